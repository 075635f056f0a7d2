//! Per-tenant keys for what a completion's record holds about its text.
//!
//! Each tenant has two random 256-bit keys in the audit database
//! (`tenant_keys`), made on first use: the **digest key** keys the
//! HMAC-SHA256 digests of a completion's request and answer, so equal prompts
//! of different tenants give different digests and cannot be matched across
//! tenants; the **text key** seals (ChaCha20-Poly1305, the call id as
//! associated data) the text policy obliges keeping. Deleting a tenant's
//! keys ([`TenantKeys::erase`]) erases that text for good: the sealed
//! records stay in the chain, and still verify, but nobody can open them.
//!
//! The keys are stored as they are: whoever can read the audit database can
//! open what it seals. What this gives is erasure on demand and digests that
//! do not link tenants, not secrecy from the database's own readers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::AuditStore;
use super::store::on_pool;

/// Bytes of each key.
const KEY_LEN: usize = 32;

/// One tenant's keys.
struct Keys {
    digest: hmac::Key,
    text: LessSafeKey,
}

/// The tenants' keys, read from (or made in) the audit database once per
/// tenant and host.
#[derive(Clone)]
pub struct TenantKeys {
    store: AuditStore,
    cache: Arc<Mutex<HashMap<String, Arc<Keys>>>>,
    random: SystemRandom,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys").finish_non_exhaustive()
    }
}

/// Why a tenant's keys could not be used.
pub type KeyError = String;

impl TenantKeys {
    /// The keys kept in `store`.
    pub fn new(store: AuditStore) -> TenantKeys {
        TenantKeys {
            store,
            cache: Arc::default(),
            random: SystemRandom::new(),
        }
    }

    /// HMAC-SHA256 of `bytes` under `tenant`'s digest key, lowercase hex.
    pub async fn digest(&self, tenant: &str, bytes: &[u8]) -> Result<String, KeyError> {
        let keys = self.keys(tenant, true).await?.ok_or("no keys were made")?;
        Ok(hex::encode(hmac::sign(&keys.digest, bytes).as_ref()))
    }

    /// `text` sealed under `tenant`'s text key for the record `call_id`:
    /// base64 of the nonce and the ciphertext.
    pub async fn seal(&self, tenant: &str, call_id: &str, text: &str) -> Result<String, KeyError> {
        let keys = self.keys(tenant, true).await?.ok_or("no keys were made")?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| "the system's random source failed")?;
        let mut sealed = text.as_bytes().to_vec();
        keys.text
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(call_id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "sealing failed")?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// The text sealed for `call_id`, or `None` when `tenant`'s keys were
    /// erased. `Err` when the sealed text was altered or is not ours.
    pub async fn unseal(
        &self,
        tenant: &str,
        call_id: &str,
        sealed: &str,
    ) -> Result<Option<String>, KeyError> {
        let Some(keys) = self.keys(tenant, false).await? else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| "the sealed text is not base64")?;
        if bytes.len() < NONCE_LEN {
            return Err("the sealed text is too short".into());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut ciphertext = ciphertext.to_vec();
        let text = keys
            .text
            .open_in_place(nonce, Aad::from(call_id.as_bytes()), &mut ciphertext)
            .map_err(|_| "the sealed text does not open: altered, or sealed for another record")?;
        String::from_utf8(text.to_vec())
            .map(Some)
            .map_err(|_| "the sealed text is not UTF-8".into())
    }

    /// Deletes `tenant`'s keys: what was sealed for it can no longer be
    /// opened, and its later completions get new keys. Whether it had any.
    pub async fn erase(&self, tenant: &str) -> Result<bool, KeyError> {
        let deleted = on_pool!(&self.store, pool => {
            sqlx::query("DELETE FROM tenant_keys WHERE tenant = $1")
                .bind(tenant)
                .execute(pool)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected()
        });
        self.forget(tenant);
        Ok(deleted > 0)
    }

    /// Drops `tenant`'s cached keys (another host may have erased them).
    fn forget(&self, tenant: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(tenant);
        }
    }

    /// `tenant`'s keys: cached, else read, else (when `make`) made. Two
    /// hosts making them at once agree on whichever was stored first.
    async fn keys(&self, tenant: &str, make: bool) -> Result<Option<Arc<Keys>>, KeyError> {
        if let Some(keys) = self.cache.lock().ok().and_then(|c| c.get(tenant).cloned()) {
            return Ok(Some(keys));
        }
        if make {
            let mut digest = [0u8; KEY_LEN];
            let mut text = [0u8; KEY_LEN];
            self.random
                .fill(&mut digest)
                .and_then(|()| self.random.fill(&mut text))
                .map_err(|_| "the system's random source failed")?;
            on_pool!(&self.store, pool => {
                sqlx::query(
                    "INSERT INTO tenant_keys (tenant, digest_key, text_key) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant) DO NOTHING",
                )
                .bind(tenant)
                .bind(&digest[..])
                .bind(&text[..])
                .execute(pool)
                .await
                .map_err(|e| e.to_string())?;
            });
        }
        let row: Option<(Vec<u8>, Vec<u8>)> = on_pool!(&self.store, pool => {
            sqlx::query_as("SELECT digest_key, text_key FROM tenant_keys WHERE tenant = $1")
                .bind(tenant)
                .fetch_optional(pool)
                .await
                .map_err(|e| e.to_string())?
        });
        let Some((digest, text)) = row else {
            return Ok(None);
        };
        let text = UnboundKey::new(&CHACHA20_POLY1305, &text)
            .map_err(|_| "a stored text key has the wrong length")?;
        let keys = Arc::new(Keys {
            digest: hmac::Key::new(hmac::HMAC_SHA256, &digest),
            text: LessSafeKey::new(text),
        });
        if make && let Ok(mut cache) = self.cache.lock() {
            cache.insert(tenant.to_string(), keys.clone());
        }
        Ok(Some(keys))
    }
}
