//! The response cache in the pipeline: looked up after the decision (the
//! request as policy obliged it), before any reservation; a hit runs no
//! backend and costs nothing. A completion the output stage allowed is kept
//! before its record ([`crate::gateway::cache`] keeps the entries).

use serde_json::Value;

use super::{Kernel, OpenCall};
use crate::registry::ToolEntry;

impl Kernel {
    /// The completion kept for this request to `model`, if the cache holds
    /// one; otherwise notes the key its answer is kept under. A cache that
    /// cannot be read is a miss.
    pub(super) async fn look_up(
        &self,
        call: &mut OpenCall,
        model: &ToolEntry,
        args: Option<&Value>,
    ) -> Option<String> {
        let cache = self.response_cache.as_ref()?;
        let kind = model.model.as_ref()?.kind;
        let tenant = &call.request.principal.tenant;
        let args = args.unwrap_or(&call.request.args);
        let key = match cache.key(tenant, &model.name, kind, args).await {
            Ok(key) => key?,
            Err(e) => {
                tracing::warn!(error = %e, "the response cache could not key a request");
                return None;
            }
        };
        match cache.get(tenant, &key).await {
            Ok(Some(hit)) => {
                call.trail.cache = Some("hit");
                Some(hit)
            }
            Ok(None) => {
                call.trail.cache_key = Some(key);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "the response cache could not be read");
                None
            }
        }
    }

    /// Keeps the completion of a call that missed the cache, once its
    /// output was allowed. A cache that cannot be written changes nothing
    /// for the caller.
    pub(super) async fn keep(&self, call: &mut OpenCall) {
        let (Some(cache), Some(key), Some(output), Some(model)) = (
            &self.response_cache,
            &call.trail.cache_key,
            &call.trail.cache_output,
            &call.trail.model,
        ) else {
            return;
        };
        let tenant = &call.request.principal.tenant;
        match cache.put(tenant, key, &model.name, output).await {
            Ok(()) => call.trail.cache = Some("stored"),
            Err(e) => tracing::warn!(error = %e, "the response cache could not be written"),
        }
    }
}
