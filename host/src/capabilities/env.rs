//! Environment variables: names in the manifest, values in the grant; the
//! plugin sees (through `wasi:cli/environment`) only names both list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Capability, GrantLoad, HostSettings, Invalid, Prepare};

/// The `env` capability.
#[derive(Debug)]
pub struct Env;

/// `[capabilities] env`: by default none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct EnvRequest {
    /// Names of environment variables.
    pub env: Vec<String>,
}

/// `[plugins.NAME.grants] env`: by default none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct EnvGrant {
    /// Environment variables with their values.
    pub env: BTreeMap<String, String>,
}

impl Capability for Env {
    const SUMMARY_FIELDS: &'static [&'static str] = &["env"];
    type Request = EnvRequest;
    type Grant = EnvGrant;
    /// Names and values visible to the plugin.
    type Effective = Vec<(String, String)>;
    type State = ();

    fn validate_request(_request: &EnvRequest) -> Result<(), Invalid> {
        Ok(())
    }

    fn validate_grant(_grant: &mut EnvGrant, _load: &GrantLoad<'_>) -> Result<(), Invalid> {
        Ok(())
    }

    fn intersect(
        request: &EnvRequest,
        grant: &EnvGrant,
        _host: &HostSettings<'_>,
    ) -> Result<Vec<(String, String)>, String> {
        Ok(grant
            .env
            .iter()
            .filter(|(name, _)| request.env.contains(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn missing(request: &EnvRequest, grant: &EnvGrant, missing: &mut Vec<String>) {
        for name in &request.env {
            if !grant.env.contains_key(name) {
                missing.push(format!("env {name} is not granted"));
            }
        }
    }

    /// Names only: values may be credentials.
    fn summary(
        env: &Vec<(String, String)>,
        summary: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        summary.insert("env".into(), env.iter().map(|(k, _)| k.clone()).collect());
    }

    fn prepare(env: &Vec<(String, String)>, call: &mut Prepare<'_>) {
        for (name, value) in env {
            call.wasi.env(name, value);
        }
    }
}
