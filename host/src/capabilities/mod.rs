//! Capabilities: what a plugin requests, what the operator grants, and the
//! effective set (their intersection) that the sandbox is built from.
//!
//! Anything not in the effective set is absent from the sandbox: no preopen,
//! no environment variable, no reachable host, no stored state.
//!
//! Each kind of capability is one [`Capability`] implementation in a file of
//! its own (the shape of Spin's factors): its manifest request, its grant,
//! their validation, intersection and missing parts, its summary for the
//! policy input, and its host side (what it links into the sandbox's linker
//! and the state it prepares for each call). The [`capabilities!`] list below
//! registers the kinds, one line each, and builds [`Requested`], [`Grants`],
//! [`Effective`] and the per-call [`CallCapabilities`] from them. The sandbox
//! depends on this module, never the other way round: it implements [`Host`]
//! for its per-call state.

pub mod directories;
pub mod env;
pub mod http;
pub mod kv;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::filesystem::WasiFilesystemCtx;

use crate::audit::AuditStore;

pub use directories::RequestedDirectory;
pub use directories::{Access, DiskQuota, DiskQuotaExceeded, GrantedDirectory, Preopens};
pub use http::{BoundSecret, EgressRules, Origin, SecretBinding, forbidden_method, plain_path};

/// A field and what is wrong with it, e.g. (`directories[0].guest`, "`data`
/// must be an absolute path"); the loaders prefix the field with where it is
/// (`capabilities.` in a manifest, `plugins.NAME.grants.` in the config).
pub type Invalid = (String, String);

/// One kind of capability.
pub trait Capability {
    /// The keys this kind adds to `input.capabilities` (the policy input's
    /// published field list is built from them).
    const SUMMARY_FIELDS: &'static [&'static str];
    /// What a manifest's `[capabilities]` asks for; its fields are keys of
    /// that table. Every field defaults to nothing.
    type Request: Clone + std::fmt::Debug + Default + Serialize + DeserializeOwned;
    /// What the operator grants in `[plugins.NAME.grants]`; its fields are keys
    /// of that table. By default nothing is granted.
    type Grant: Clone + std::fmt::Debug + Default + Serialize + DeserializeOwned;
    /// What the plugin gets, built once at load and shared by its calls.
    type Effective: Clone + std::fmt::Debug + Default + Send + Sync;
    /// What one call holds; dropped with the call.
    type State: Send + 'static;

    /// Checks a manifest's request.
    fn validate_request(request: &Self::Request) -> Result<(), Invalid>;

    /// Checks a grant when the config loads, making relative paths absolute.
    fn validate_grant(grant: &mut Self::Grant, load: &GrantLoad<'_>) -> Result<(), Invalid>;

    /// Checks the grants of all plugins together, by plugin name (for what
    /// one plugin's grant could do to another's). `Invalid` names the full field.
    fn validate_across(_grants: &[(&str, &Self::Grant)]) -> Result<(), Invalid> {
        Ok(())
    }

    /// The effective capability: requested ∩ granted, within host limits.
    fn intersect(
        request: &Self::Request,
        grant: &Self::Grant,
        host: &HostSettings<'_>,
    ) -> Result<Self::Effective, String>;

    /// What the request asks that the grant does not give, one line each.
    fn missing(request: &Self::Request, grant: &Self::Grant, missing: &mut Vec<String>);

    /// Adds exactly [`Capability::SUMMARY_FIELDS`] to the policy's view:
    /// no host paths, no values of environment variables or secrets.
    fn summary(
        effective: &Self::Effective,
        summary: &mut serde_json::Map<String, serde_json::Value>,
    );

    /// For a tool that claims no side effects: `Ok(Some(narrowed))` when the
    /// capability can be narrowed to what changes nothing, `Ok(None)` when it
    /// changes nothing already, `Err(why)` when it cannot be narrowed.
    fn without_side_effects(
        _effective: &Self::Effective,
    ) -> Result<Option<Self::Effective>, String> {
        Ok(None)
    }

    /// Links this kind's host functions into the linker shared by all plugins.
    /// Functions check the call's state first: a call without the grant is
    /// refused there.
    fn link<T: Host>(_linker: &mut Linker<T>) -> wasmtime::Result<()> {
        Ok(())
    }

    /// Builds one call's state (and its part of the WASI context).
    fn prepare(effective: &Self::Effective, call: &mut Prepare<'_>) -> Self::State;

    /// What the call was refused so far, for the audit record.
    fn refusals(_state: &Self::State) -> Vec<String> {
        Vec::new()
    }
}

/// What validating a grant may need from the config.
#[derive(Debug)]
pub struct GrantLoad<'a> {
    /// The config file's directory: relative host paths are relative to it.
    pub base: &'a Path,
    /// The host's `[secrets]`, by name.
    pub secrets: &'a BTreeMap<String, SecretValue>,
}

/// What intersecting may need from the host.
#[derive(Debug)]
pub struct HostSettings<'a> {
    /// Host-wide limits.
    pub limits: &'a Limits,
    /// The host's `[secrets]`, by name.
    pub secrets: &'a BTreeMap<String, SecretValue>,
}

/// Who a call runs for: per-call state is scoped to it.
#[derive(Debug, Clone, Copy)]
pub struct CallScope<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// The calling principal's tenant; `None` when the host asks the plugin
    /// to describe itself at load, on nobody's behalf.
    pub tenant: Option<&'a str>,
    /// The database state is kept in (the audit store); `None` when the
    /// caller has none.
    pub store: Option<&'a AuditStore>,
}

/// One call being prepared: each kind adds what it needs.
pub struct Prepare<'a> {
    /// The call's WASI context, before it is built.
    pub wasi: &'a mut WasiCtxBuilder,
    /// The call's preopened directories.
    pub filesystem: &'a mut WasiFilesystemCtx,
    /// Who the call runs for.
    pub scope: CallScope<'a>,
}

impl std::fmt::Debug for Prepare<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepare")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The per-call state of the sandbox, as the capabilities' host functions
/// see it: WASI (with its resource table), `wasi:http`, and each kind's
/// [`CallCapabilities`].
pub trait Host:
    wasmtime_wasi::WasiView + wasmtime_wasi_http::WasiHttpView + Send + 'static
{
    /// The call's per-kind state.
    fn capabilities(&mut self) -> &mut CallCapabilities;
}

/// Registers the capability kinds: `field: Kind`, one line each. The field
/// names the kind's part of [`Effective`] and [`CallCapabilities`].
macro_rules! capabilities {
    ($($field:ident: $kind:ty,)*) => {
        /// Capabilities a plugin's manifest asks for. Every field defaults to nothing.
        #[derive(Debug, Clone, Default, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct Requested {
            /// Linear memory limit in MiB.
            pub memory_mb: Option<u64>,
            /// Wall-time limit per call in milliseconds.
            pub time_limit_ms: Option<u64>,
            $(
                #[doc = concat!("The `", stringify!($field), "` capability's request ([`", stringify!($kind), "`]).")]
                #[serde(flatten)]
                pub $field: <$kind as Capability>::Request,
            )*
        }

        /// Capabilities the operator grants a plugin in the host configuration.
        /// By default nothing is granted.
        #[derive(Debug, Clone, Default, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct Grants {
            /// Linear memory limit in MiB (capped by the host's `limits.max_memory_mb`).
            pub memory_mb: Option<u64>,
            /// Wall-time limit per call in milliseconds (capped by `limits.max_time_limit_ms`).
            pub time_limit_ms: Option<u64>,
            /// Calls of this plugin that may run at once (capped by
            /// `limits.max_concurrent_per_plugin`).
            pub max_concurrent: Option<u32>,
            $(
                #[doc = concat!("The `", stringify!($field), "` capability's grant ([`", stringify!($kind), "`]).")]
                #[serde(flatten)]
                pub $field: <$kind as Capability>::Grant,
            )*
        }

        /// The capabilities a plugin actually gets: requested ∩ granted, within host limits.
        #[derive(Debug, Clone, Default)]
        pub struct Effective {
            /// Linear memory limit in bytes; `None` for a target that does not
            /// run in Warden's sandbox (an upstream MCP server).
            pub memory_bytes: Option<u64>,
            /// Wall-time limit per call.
            pub time_limit: Duration,
            /// Largest output accepted, in bytes.
            pub output_max_bytes: usize,
            /// Calls of this plugin that may run at once.
            pub max_concurrent: u32,
            /// Fuel per call, when the host meters fuel.
            pub fuel: Option<u64>,
            $(
                #[doc = concat!("The `", stringify!($field), "` capability's effective ([`", stringify!($kind), "`]).")]
                pub $field: <$kind as Capability>::Effective,
            )*
        }

        /// One call's state, one field per kind.
        pub struct CallCapabilities {
            $(
                pub(crate) $field: <$kind as Capability>::State,
            )*
        }

        impl std::fmt::Debug for CallCapabilities {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("CallCapabilities").finish_non_exhaustive()
            }
        }

        /// The keys of `input.capabilities`, in order.
        pub fn summary_fields() -> Vec<&'static str> {
            let mut fields = vec!["memory_mb", "time_limit_ms", "max_concurrent"];
            $( fields.extend(<$kind as Capability>::SUMMARY_FIELDS); )*
            fields
        }

        impl Requested {
            /// Checks every kind's request.
            pub fn validate(&self) -> Result<(), Invalid> {
                $( <$kind as Capability>::validate_request(&self.$field)?; )*
                Ok(())
            }
        }

        impl Grants {
            /// Checks every kind's grant, making relative paths absolute.
            pub fn validate(&mut self, load: &GrantLoad<'_>) -> Result<(), Invalid> {
                $( <$kind as Capability>::validate_grant(&mut self.$field, load)?; )*
                Ok(())
            }

            /// Checks the grants of all plugins together (see
            /// [`Capability::validate_across`]).
            pub fn validate_across(plugins: &[(&str, &Grants)]) -> Result<(), Invalid> {
                $(
                    let grants: Vec<_> = plugins.iter().map(|(name, g)| (*name, &g.$field)).collect();
                    <$kind as Capability>::validate_across(&grants)?;
                )*
                Ok(())
            }
        }

        impl Effective {
            fn intersect_kinds(
                limits: Effective,
                requested: &Requested,
                granted: &Grants,
                host: &HostSettings<'_>,
            ) -> Result<Effective, String> {
                Ok(Effective {
                    $( $field: <$kind as Capability>::intersect(&requested.$field, &granted.$field, host)?, )*
                    ..limits
                })
            }

            /// What the manifest requests that the grants do not give, one line each.
            /// Limits are not listed: the operator capping them is normal.
            pub fn missing(requested: &Requested, granted: &Grants) -> Vec<String> {
                let mut missing = Vec::new();
                $( <$kind as Capability>::missing(&requested.$field, &granted.$field, &mut missing); )*
                missing
            }

            /// The form shown to policies (`input.capabilities`) and to operators:
            /// no host paths, no environment values, no secret values.
            pub fn summary(&self) -> serde_json::Value {
                let mut summary = serde_json::Map::new();
                $( <$kind as Capability>::summary(&self.$field, &mut summary); )*
                summary.insert("memory_mb".into(), self.memory_bytes.map(|bytes| bytes >> 20).into());
                summary.insert(
                    "time_limit_ms".into(),
                    u64::try_from(self.time_limit.as_millis()).unwrap_or(u64::MAX).into(),
                );
                summary.insert("max_concurrent".into(), self.max_concurrent.into());
                serde_json::Value::Object(summary)
            }

            /// These capabilities narrowed for a tool that claims no side
            /// effects: `Ok(None)` when nothing needs narrowing, `Err(why)`
            /// when a capability changes something whatever the tool does.
            pub fn without_side_effects(&self) -> Result<Option<Effective>, String> {
                let mut narrowed: Option<Effective> = None;
                $(
                    if let Some(field) = <$kind as Capability>::without_side_effects(&self.$field)? {
                        narrowed.get_or_insert_with(|| self.clone()).$field = field;
                    }
                )*
                Ok(narrowed)
            }
        }

        impl CallCapabilities {
            /// Builds one call's state from the plugin's capabilities.
            pub(crate) fn prepare(effective: &Effective, call: &mut Prepare<'_>) -> CallCapabilities {
                CallCapabilities {
                    $( $field: <$kind as Capability>::prepare(&effective.$field, call), )*
                }
            }

            /// What the call was refused so far, in order of kind.
            pub(crate) fn refusals(&self) -> Vec<String> {
                let mut refusals = Vec::new();
                $( refusals.extend(<$kind as Capability>::refusals(&self.$field)); )*
                refusals
            }
        }

        /// Links every kind's host functions.
        pub(crate) fn link<T: Host>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
            $( <$kind as Capability>::link(linker)?; )*
            Ok(())
        }
    };
}

capabilities! {
    directories: directories::Directories,
    egress: http::OutboundHttp,
    env: env::Env,
    kv: kv::Kv,
}

/// Host-wide limits and defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Memory limit when neither manifest nor grant sets one. By default 64 MiB.
    pub default_memory_mb: u64,
    /// Upper bound for any plugin's memory. By default 1024 MiB.
    pub max_memory_mb: u64,
    /// Time limit when neither manifest nor grant sets one. By default 5000 ms.
    pub default_time_limit_ms: u64,
    /// Upper bound for any plugin's time limit. By default 60000 ms.
    pub max_time_limit_ms: u64,
    /// Largest tool output accepted, in bytes. By default 1 MiB.
    pub output_max_bytes: usize,
    /// Largest HTTP request body a plugin may send. By default 1 MiB.
    pub http_request_body_max: u64,
    /// Largest HTTP response body a plugin may receive. By default 8 MiB.
    pub http_response_body_max: u64,
    /// Concurrent calls per plugin when the grant does not say. By default 16.
    pub default_max_concurrent: u32,
    /// Upper bound for any plugin's concurrency. By default 256.
    pub max_concurrent_per_plugin: u32,
    /// Fuel (roughly, WebAssembly instructions) per call. By default unset:
    /// time limits alone bound CPU. Setting it costs some speed on every call.
    pub fuel_per_call: Option<u64>,
}

impl Limits {
    /// Calls of a plugin that may run at once, given its grant's `max_concurrent`.
    pub fn concurrency(&self, granted: Option<u32>) -> u32 {
        granted
            .unwrap_or(self.default_max_concurrent)
            .clamp(1, self.max_concurrent_per_plugin.max(1))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_memory_mb: 64,
            max_memory_mb: 1024,
            default_time_limit_ms: 5000,
            max_time_limit_ms: 60_000,
            output_max_bytes: 1 << 20,
            http_request_body_max: 1 << 20,
            http_response_body_max: 8 << 20,
            default_max_concurrent: 16,
            max_concurrent_per_plugin: 256,
            fuel_per_call: None,
        }
    }
}

impl Effective {
    /// Intersects `requested` with `granted` within `limits`, kind by kind.
    /// `secrets` holds the values of the host's `[secrets]`, by name.
    ///
    /// Grants must already be valid: the config and manifest loaders check
    /// them; a value that still fails is an `Err`.
    pub fn intersect(
        requested: &Requested,
        granted: &Grants,
        limits: &Limits,
        secrets: &BTreeMap<String, SecretValue>,
    ) -> Result<Effective, String> {
        let memory_mb = lesser(requested.memory_mb, granted.memory_mb)
            .unwrap_or(limits.default_memory_mb)
            .min(limits.max_memory_mb);
        let time_limit_ms = lesser(requested.time_limit_ms, granted.time_limit_ms)
            .unwrap_or(limits.default_time_limit_ms)
            .min(limits.max_time_limit_ms);
        let base = Effective {
            memory_bytes: Some(memory_mb << 20),
            time_limit: Duration::from_millis(time_limit_ms),
            output_max_bytes: limits.output_max_bytes,
            max_concurrent: limits.concurrency(granted.max_concurrent),
            fuel: limits.fuel_per_call,
            ..Effective::default()
        };
        Effective::intersect_kinds(base, requested, granted, &HostSettings { limits, secrets })
    }
}

/// A secret's value. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: String) -> SecretValue {
        SecretValue(value)
    }

    /// The value itself; only the egress layer needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

fn lesser(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    #[test]
    fn effective_is_the_intersection_of_requested_and_granted() {
        let requested: Requested = toml::from_str(
            r#"
            directories = [{ guest = "/data", access = "rw" }, { guest = "/cache", access = "rw" }]
            outbound_http = ["https://*.example.com"]
            env = ["LANG"]
            memory_mb = 128
            "#,
        )
        .unwrap();
        // Granted directories are opened while intersecting: they must exist.
        let d = tempfile::tempdir().unwrap();
        let granted: Grants = toml::from_str(&format!(
            r#"
            directories = [{{ host = {:?}, guest = "/data", access = "ro" }},
                           {{ host = "/srv/x", guest = "/other", access = "rw" }}]
            outbound_http = ["https://api.example.com", "https://evil.net"]
            env = {{ LANG = "C", SECRET = "x" }}
            memory_mb = 32
            time_limit_ms = 100000
            "#,
            d.path().display().to_string()
        ))
        .unwrap();
        let eff = Effective::intersect(&requested, &granted, &Limits::default(), &BTreeMap::new())
            .unwrap();
        assert_eq!(eff.directories.granted.len(), 1);
        assert_eq!(eff.directories.granted[0].access, Access::Ro);
        assert_eq!(eff.egress.origins, vec![origin("https://api.example.com")]);
        assert_eq!(eff.env, vec![("LANG".to_string(), "C".to_string())]);
        assert_eq!(eff.memory_bytes, Some(32 << 20));
        assert_eq!(eff.time_limit, Duration::from_millis(60_000));
        assert_eq!(
            Effective::missing(&requested, &granted),
            vec![
                "directory /data is requested rw but granted ro",
                "directory /cache (rw) is not granted",
                "outbound_http https://*.example.com is not granted",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused_on_both_sides() {
        let requested = toml::from_str::<Requested>("sockets = true").unwrap_err();
        assert!(
            requested.to_string().contains("unknown field `sockets`"),
            "{requested}"
        );
        let granted = toml::from_str::<Grants>("envs = {}").unwrap_err();
        assert!(
            granted.to_string().contains("unknown field `envs`"),
            "{granted}"
        );
    }

    #[test]
    fn the_published_schema_has_exactly_the_registered_fields() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas/policy-input.v1.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let capabilities = &schema["properties"]["capabilities"];
        let mut published: Vec<&str> = capabilities["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = summary_fields();
        published.sort_unstable();
        fields.sort_unstable();
        assert_eq!(
            published, fields,
            "docs/schemas/policy-input.v1.json must describe every capability's summary fields"
        );
    }

    #[test]
    fn the_summary_has_exactly_the_registered_fields() {
        let summary = Effective::default().summary();
        let mut keys: Vec<&str> = summary
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = summary_fields();
        keys.sort_unstable();
        fields.sort_unstable();
        assert_eq!(keys, fields);
    }
}
