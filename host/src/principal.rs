//! Principals: who is calling. API tokens map to a principal id, roles and tenant.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::PrincipalConfig;
use crate::digest::sha256_hex;
use serde::Serialize;

/// An authenticated caller, as policy sees it (`input.principal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable identifier.
    pub id: String,
    /// Roles granted by the operator.
    pub roles: Vec<String>,
    /// Tenant the principal belongs to.
    pub tenant: String,
    /// Operator-defined attributes (`input.principal.attributes`).
    pub attributes: std::collections::BTreeMap<String, serde_json::Value>,
    /// `input.principal` in the policy evaluator's value type, built at the
    /// principal's first call.
    #[serde(skip)]
    pub(crate) policy_document: std::sync::OnceLock<regorus::Value>,
}

/// Lookup of principals by bearer token or by id.
#[derive(Debug, Default)]
pub struct Principals {
    by_token_digest: HashMap<String, Arc<Principal>>,
    by_id: HashMap<String, Arc<Principal>>,
}

impl Principals {
    /// Builds the lookup from validated config entries.
    pub fn new(configs: &[PrincipalConfig]) -> Principals {
        let mut principals = Principals::default();
        for config in configs {
            let principal = Arc::new(Principal {
                id: config.id.clone(),
                roles: config.roles.clone(),
                tenant: config.tenant.clone(),
                attributes: config.attributes.clone(),
                policy_document: std::sync::OnceLock::new(),
            });
            if let Some(digest) = config.token_digest() {
                principals.by_token_digest.insert(digest, principal.clone());
            }
            principals.by_id.insert(config.id.clone(), principal);
        }
        principals
    }

    /// The principal holding this bearer token. Tokens are compared by digest,
    /// so the clear token never needs to be kept.
    pub fn by_token(&self, token: &str) -> Option<Arc<Principal>> {
        self.by_token_digest
            .get(&sha256_hex(token.as_bytes()))
            .cloned()
    }

    /// The principal whose token `Authorization: Bearer <token>` carries;
    /// `unauthenticated` without one or for a token nobody holds.
    pub fn by_bearer(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Arc<Principal>, crate::error::CallError> {
        use crate::error::{CallError, ErrorCode};
        let value = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                CallError::new(
                    ErrorCode::Unauthenticated,
                    "missing `Authorization: Bearer` header",
                )
            })?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| CallError::new(ErrorCode::Unauthenticated, "expected a Bearer token"))?;
        self.by_token(token.trim())
            .ok_or_else(|| CallError::new(ErrorCode::Unauthenticated, "unknown token"))
    }

    /// The principal with this id (for the local CLI, which the operator runs).
    pub fn by_id(&self, id: &str) -> Option<Arc<Principal>> {
        self.by_id.get(id).cloned()
    }
}
