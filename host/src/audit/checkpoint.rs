//! Signed checkpoints: every chain's head at one moment, signed with the
//! host's ed25519 key (the kind `warden policy keygen` makes).
//!
//! A hash chain shows edits, insertions and gaps, but not the loss of its
//! newest records together with a rolled-back head, nor a chain deleted whole.
//! A checkpoint exported somewhere the database's writers cannot reach
//! (`warden audit checkpoint`) pins each chain's head hash at that moment:
//! [`verify_against`] then proves that every record up to those heads is
//! still there, unchanged, under the same host label.
//!
//! The signed message is `warden-audit-checkpoint-v1:` followed by the exact
//! bytes of `body` (JSON), so verification never depends on re-serialising.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{AuditStore, VerifyReport};
use crate::error::{Error, Result};

const DOMAIN: &[u8] = b"warden-audit-checkpoint-v1:";

/// A signed checkpoint, as stored and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The signed JSON text: a [`CheckpointBody`].
    pub body: String,
    /// Hex ed25519 signature over `warden-audit-checkpoint-v1:` + `body`.
    pub signature: String,
    /// Hex public key of the signer (informational: verification uses a key
    /// the verifier trusts, never this one).
    pub public_key: String,
}

/// What a checkpoint attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// Format version (1).
    pub v: u8,
    /// When the heads were read.
    pub created_at: DateTime<Utc>,
    /// The host (and pid) that signed.
    pub signer: String,
    /// Every registered chain's head at `created_at`.
    pub chains: Vec<CheckpointHead>,
}

/// One chain's head in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHead {
    /// Chain id.
    pub chain_id: String,
    /// Host label of the chain.
    pub host: String,
    /// Sequence number of its last record.
    pub head_seq: i64,
    /// Hash of its last record.
    pub head_hash: String,
}

/// Reads a hex ed25519 secret key file (as written by `warden policy keygen`).
pub fn load_signing_key(path: &std::path::Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Config {
            path: path.to_path_buf(),
            message: "not a hex ed25519 secret key (64 hex characters)".into(),
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Reads every chain head, signs them, stores the checkpoint and returns it.
pub async fn create(store: &AuditStore, key: &SigningKey, signer: &str) -> Result<Checkpoint> {
    let heads = store.chains().await?;
    let body = CheckpointBody {
        v: 1,
        created_at: super::AuditRecord::now(),
        signer: signer.to_string(),
        chains: heads
            .into_iter()
            .map(|h| CheckpointHead {
                chain_id: h.chain_id,
                host: h.host,
                head_seq: h.head_seq,
                head_hash: h.head_hash,
            })
            .collect(),
    };
    let body = serde_json::to_string(&body).map_err(|e| Error::Audit(e.to_string()))?;
    let mut message = DOMAIN.to_vec();
    message.extend_from_slice(body.as_bytes());
    let checkpoint = Checkpoint {
        signature: hex::encode(key.sign(&message).to_bytes()),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        body,
    };
    store.insert_checkpoint(&checkpoint).await?;
    Ok(checkpoint)
}

impl Checkpoint {
    /// The body, if `key` signed it; `Err` says why not.
    pub fn open(&self, key: &VerifyingKey) -> std::result::Result<CheckpointBody, String> {
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the checkpoint's signature is not 64 hex bytes")?;
        let mut message = DOMAIN.to_vec();
        message.extend_from_slice(self.body.as_bytes());
        key.verify(&message, &Signature::from_bytes(&bytes))
            .map_err(|_| "the checkpoint is not signed by the trusted key".to_string())?;
        serde_json::from_str(&self.body).map_err(|e| format!("the checkpoint's body: {e}"))
    }
}

/// Verifies the trail (as [`super::verify`]) and then that everything the
/// checkpoint attests is still there: every chain it names is registered
/// under the same host, its head has not moved back, and its record at the
/// checkpoint's head seq has the checkpoint's hash — which, the chain being
/// intact, fixes every record before it too.
pub async fn verify_against(
    store: &AuditStore,
    checkpoint: &Checkpoint,
    key: &VerifyingKey,
) -> Result<VerifyReport> {
    let body = match checkpoint.open(key) {
        Ok(body) => body,
        Err(failure) => {
            return Ok(VerifyReport {
                chains: 0,
                records: 0,
                failure: Some(failure),
            });
        }
    };
    let mut report = super::verify(store).await?;
    if report.failure.is_some() {
        return Ok(report);
    }
    let chains = store.chains().await?;
    let at = body.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ");
    for attested in body.chains.iter().filter(|c| c.head_seq >= 0) {
        let Some(current) = chains.iter().find(|c| c.chain_id == attested.chain_id) else {
            report.failure = Some(format!(
                "chain {} ({}) had {} records at the checkpoint of {at} and is gone: deleted whole",
                attested.chain_id,
                attested.host,
                attested.head_seq + 1
            ));
            return Ok(report);
        };
        if current.host != attested.host {
            report.failure = Some(format!(
                "chain {}: host is `{}` but was `{}` at the checkpoint of {at}: edited",
                attested.chain_id, current.host, attested.host
            ));
            return Ok(report);
        }
        if current.head_seq < attested.head_seq {
            report.failure = Some(format!(
                "chain {} ({}): head is seq {} but was seq {} at the checkpoint of {at}: records {}..={} were deleted and the head rolled back",
                attested.chain_id,
                attested.host,
                current.head_seq,
                attested.head_seq,
                current.head_seq + 1,
                attested.head_seq
            ));
            return Ok(report);
        }
        // Records archived out of the database are checked in their
        // archives (`warden audit verify --archive`); the database keeps the
        // last archived hash.
        let hash = if attested.head_seq < current.archived_seq {
            continue;
        } else if attested.head_seq == current.archived_seq {
            Some(current.archived_hash.clone())
        } else {
            store
                .chain_record(&attested.chain_id, attested.head_seq)
                .await?
                .map(|r| r.hash)
        };
        if hash.as_deref() != Some(attested.head_hash.as_str()) {
            report.failure = Some(format!(
                "chain {} ({}): record seq {} does not have the hash the checkpoint of {at} attests: the chain was rewritten",
                attested.chain_id, attested.host, attested.head_seq
            ));
            return Ok(report);
        }
    }
    Ok(report)
}
