//! Bundle signatures: with `policy.public_key` configured, a bundle must carry
//! `bundle.sig`, an ed25519 signature over its content hash, or it is refused.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// The signature file inside a bundle directory (not part of the bundle hash).
pub const SIGNATURE_FILE: &str = "bundle.sig";

fn message(hash: &str) -> Vec<u8> {
    format!("warden-policy-bundle-v1:{hash}").into_bytes()
}

fn bytes<const N: usize>(hex_text: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(hex_text.trim()).map_err(|e| format!("{what} is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{what} must be {N} bytes ({} hex characters)", N * 2))
}

/// Parses a hex ed25519 public key.
pub fn public_key(hex_text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_bytes(&bytes::<32>(hex_text, "the public key")?)
        .map_err(|e| format!("invalid ed25519 public key: {e}"))
}

/// Checks `dir`'s signature over `hash`.
pub fn verify(dir: &Path, hash: &str, key: &VerifyingKey) -> Result<(), String> {
    let path = dir.join(SIGNATURE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        format!(
            "a public key is configured but the bundle is unsigned ({SIGNATURE_FILE} is missing)"
        )
    })?;
    let signature = Signature::from_bytes(&bytes::<64>(&text, SIGNATURE_FILE)?);
    key.verify(&message(hash), &signature).map_err(|_| {
        format!("{SIGNATURE_FILE} is not a valid signature of this bundle by the configured key")
    })
}

/// Signs `hash` with the hex secret key in `key_file` and writes `dir/bundle.sig`.
pub fn sign(dir: &Path, hash: &str, key_file: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let key = SigningKey::from_bytes(&bytes::<32>(&text, "the secret key")?);
    let signature = key.sign(&message(hash));
    std::fs::write(dir.join(SIGNATURE_FILE), hex::encode(signature.to_bytes()))
        .map_err(|e| format!("{}: {e}", dir.join(SIGNATURE_FILE).display()))
}

/// A new key pair as (secret hex, public hex).
pub fn generate() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        hex::encode(seed),
        hex::encode(key.verifying_key().to_bytes()),
    ))
}
