//! The response cache: the completion of a deterministic request
//! (`temperature: 0`, or any embeddings request), kept per tenant in the
//! audit database so every replica shares it. A hit is answered without the
//! provider and without a reservation (it costs nothing), and still passes
//! the output checks, verifiers and output decision.
//!
//! Entries never cross tenants: the key is an HMAC of the request under the
//! tenant's own digest key ([`TenantKeys`]), and the completion is sealed
//! under the tenant's text key, so erasing a tenant's keys erases its cache.

use serde_json::Value;

use crate::audit::{AuditStore, TenantKeys, on_pool};
use crate::config::{CacheSettings, ModelKind};

/// The cache over the audit store.
#[derive(Debug, Clone)]
pub(crate) struct ResponseCache {
    store: AuditStore,
    keys: TenantKeys,
    settings: CacheSettings,
}

/// Request fields that do not change the completion.
const IGNORED: &[&str] = &["user", "stream", "stream_options", "metadata", "store"];

impl ResponseCache {
    pub(crate) fn new(store: AuditStore, keys: TenantKeys, settings: CacheSettings) -> Self {
        ResponseCache {
            store,
            keys,
            settings,
        }
    }

    /// The cache key of a request `args` (after policy's obligations) to
    /// `model` for `tenant`, or none when its answer is not deterministic.
    pub(crate) async fn key(
        &self,
        tenant: &str,
        model: &str,
        kind: ModelKind,
        args: &Value,
    ) -> Result<Option<String>, String> {
        let deterministic = match kind {
            ModelKind::Embeddings => true,
            ModelKind::Chat => {
                args.get("temperature").and_then(Value::as_f64) == Some(0.0)
                    && args.get("stream").and_then(Value::as_bool) != Some(true)
                    && args.get("n").and_then(Value::as_u64).is_none_or(|n| n == 1)
            }
        };
        if !deterministic {
            return Ok(None);
        }
        let mut normalized = args.clone();
        if let Some(object) = normalized.as_object_mut() {
            for field in IGNORED {
                object.remove(*field);
            }
        }
        // serde_json keeps object keys sorted here: the text is canonical
        // (`kernel::canonical_json` is the same).
        let text = format!("{model}\n{normalized}");
        self.keys.digest(tenant, text.as_bytes()).await.map(Some)
    }

    /// The completion kept under `key` for `tenant`, if it has not expired.
    pub(crate) async fn get(&self, tenant: &str, key: &str) -> Result<Option<String>, String> {
        let now = chrono::Utc::now().timestamp_millis();
        let sealed: Option<(String,)> = on_pool!(&self.store, pool => {
            sqlx::query_as(
                "SELECT sealed FROM response_cache \
                 WHERE tenant = $1 AND key = $2 AND expires_at > $3",
            )
            .bind(tenant)
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(|e| e.to_string())?
        });
        let Some((sealed,)) = sealed else {
            return Ok(None);
        };
        self.keys.unseal(tenant, key, &sealed).await
    }

    /// Keeps `completion` under `key` for `tenant`, then drops the tenant's
    /// oldest entries past its bound.
    pub(crate) async fn put(
        &self,
        tenant: &str,
        key: &str,
        model: &str,
        completion: &str,
    ) -> Result<(), String> {
        if completion.len() > self.settings.max_entry_bytes {
            return Ok(());
        }
        let sealed = self.keys.seal(tenant, key, completion).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let ttl_ms = i64::try_from(self.settings.ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let max = i64::try_from(self.settings.max_entries_per_tenant).unwrap_or(i64::MAX);
        on_pool!(&self.store, pool => {
            sqlx::query(
                "INSERT INTO response_cache (tenant, key, model, sealed, bytes, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant, key) DO UPDATE SET sealed = excluded.sealed, \
                 bytes = excluded.bytes, created_at = excluded.created_at, \
                 expires_at = excluded.expires_at",
            )
            .bind(tenant)
            .bind(key)
            .bind(model)
            .bind(&sealed)
            .bind(completion.len() as i64)
            .bind(now)
            .bind(now.saturating_add(ttl_ms))
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
            // Expired entries, and the oldest past the tenant's bound.
            sqlx::query(
                "DELETE FROM response_cache WHERE tenant = $1 AND (expires_at <= $2 OR \
                 created_at <= (SELECT created_at FROM response_cache WHERE tenant = $1 \
                 ORDER BY created_at DESC LIMIT 1 OFFSET $3))",
            )
            .bind(tenant)
            .bind(now)
            .bind(max)
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
        });
        Ok(())
    }
}
