//! Capabilities: what a plugin requests, what the operator grants, and the
//! effective set (their intersection) that the sandbox is built from.
//!
//! Anything not in the effective set is absent from the sandbox: no preopen,
//! no environment variable, no reachable host.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Access mode of a directory. `ro` < `rw`: the effective mode is the lesser
/// of what is requested and what is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read-only.
    Ro,
    /// Read and write.
    Rw,
}

/// Capabilities a plugin's manifest asks for. Every field defaults to nothing.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requested {
    /// Directories, by guest path, with the access wanted.
    #[serde(default)]
    pub directories: Vec<RequestedDirectory>,
    /// Origins for outbound HTTP (`https://api.example.com`, `https://*.example.com`),
    /// or `*` for "whatever the operator grants".
    #[serde(default)]
    pub outbound_http: Vec<String>,
    /// Names of environment variables.
    #[serde(default)]
    pub env: Vec<String>,
    /// Linear memory limit in MiB.
    pub memory_mb: Option<u64>,
    /// Wall-time limit per call in milliseconds.
    pub time_limit_ms: Option<u64>,
}

/// A directory a plugin asks for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedDirectory {
    /// Absolute path inside the sandbox, e.g. `/data`.
    pub guest: String,
    /// Access wanted.
    pub access: Access,
}

/// Capabilities the operator grants a plugin in the host configuration.
/// By default nothing is granted.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Host directories mapped to guest paths.
    #[serde(default)]
    pub directories: Vec<GrantedDirectory>,
    /// Origins the plugin may send HTTP requests to.
    #[serde(default)]
    pub outbound_http: Vec<String>,
    /// Environment variables with their values.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Linear memory limit in MiB (capped by the host's `limits.max_memory_mb`).
    pub memory_mb: Option<u64>,
    /// Wall-time limit per call in milliseconds (capped by `limits.max_time_limit_ms`).
    pub time_limit_ms: Option<u64>,
    /// Restricted address ranges (CIDR, e.g. `127.0.0.0/8`) that granted origins
    /// may resolve to. By default loopback, private, link-local (cloud metadata)
    /// and other non-public addresses are refused.
    #[serde(default)]
    pub private_ranges: Vec<String>,
    /// Secrets the host injects as headers into requests to one origin.
    #[serde(default)]
    pub secrets: Vec<SecretBinding>,
    /// Calls of this plugin that may run at once (capped by
    /// `limits.max_concurrent_per_plugin`).
    pub max_concurrent: Option<u32>,
    /// Most bytes the plugin's read-write directories may hold, in MiB.
    /// By default no quota beyond the host's disk.
    pub disk_quota_mb: Option<u64>,
}

/// Binds a secret to a destination: the host adds `header: format` (with
/// `{secret}` replaced by the value) to every request to `origin`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretBinding {
    /// Name of a `[secrets.NAME]` entry.
    pub secret: String,
    /// Origin the header is sent to, and only to.
    pub origin: String,
    /// Header name, e.g. `authorization`.
    pub header: String,
    /// Header value template. By default `{secret}`.
    #[serde(default = "default_secret_format")]
    pub format: String,
    /// Methods whose requests carry the secret, e.g. `["GET"]`. By default
    /// every method egress lets out.
    pub methods: Option<Vec<String>>,
    /// Path prefixes whose requests carry the secret, e.g. `["/v1/"]`; a
    /// prefix matches whole segments. By default every path.
    pub path_prefixes: Option<Vec<String>>,
}

impl SecretBinding {
    /// Checks `methods` and `path_prefixes`: method tokens (never TRACE,
    /// TRACK or CONNECT, which egress refuses), and prefixes that are plain
    /// absolute paths (no dot segments, percent-escapes, backslashes, query
    /// or fragment), so that they mean the same to Warden and to the server.
    pub fn validate(&self) -> Result<(), String> {
        for method in self.methods.iter().flatten() {
            if http::Method::from_bytes(method.as_bytes()).is_err() || forbidden_method(method) {
                return Err(format!(
                    "`{method}` is not a method a secret can be sent with"
                ));
            }
        }
        for prefix in self.path_prefixes.iter().flatten() {
            if !prefix.starts_with('/') || !plain_path(prefix) || prefix.contains(['?', '#']) {
                return Err(format!(
                    "`{prefix}` must be an absolute path without `.` or `..` segments, \
                     `%`, `\\`, `?` or `#`"
                ));
            }
        }
        Ok(())
    }
}

/// Methods egress always refuses: TRACE and TRACK echo the request (with any
/// injected secret) back to the plugin; CONNECT opens a tunnel past every check.
pub fn forbidden_method(method: &str) -> bool {
    ["TRACE", "TRACK", "CONNECT"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// Whether `path` means the same to every server: no dot segments, no
/// percent-escapes (an encoded `/`, `.` or `\` is read differently by
/// different servers), no backslashes.
pub fn plain_path(path: &str) -> bool {
    !path.contains(['%', '\\'])
        && path
            .split('/')
            .all(|segment| segment != "." && segment != "..")
}

fn default_secret_format() -> String {
    "{secret}".to_string()
}

/// A host directory granted to a plugin.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantedDirectory {
    /// Directory on the host (relative paths are relative to the config file).
    pub host: PathBuf,
    /// Absolute path inside the sandbox.
    pub guest: String,
    /// Access granted.
    pub access: Access,
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

/// An origin pattern: scheme, host (exact or `*.` subdomains) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    subdomains: bool,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` or `scheme://*.domain[:port]`. The port
    /// defaults to the scheme's (80 or 443). Paths, userinfo and queries are refused.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an origin like `https://api.example.com`"))?;
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return Err(format!("`{text}`: scheme must be http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
            return Err(format!(
                "`{text}`: an origin has only scheme, host and port (no path, user or query)"
            ));
        }
        if rest.contains(['[', ']']) {
            return Err(format!("`{text}`: IPv6 literal origins are not supported"));
        }
        let (host, port) = match rest.split_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("`{text}`: invalid port `{port}`"))?;
                (host, port)
            }
            None => (rest, default_port),
        };
        let (subdomains, host) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!("`{text}`: invalid host"));
        }
        Ok(Origin {
            scheme: scheme.to_string(),
            host: host.to_ascii_lowercase(),
            subdomains,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` matches this origin.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        if self.subdomains {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        } else {
            host == self.host
        }
    }

    /// Whether every request this origin allows is also allowed by `self`.
    fn covers(&self, other: &Origin) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        match (self.subdomains, other.subdomains) {
            (false, false) => self.host == other.host,
            (false, true) => false,
            (true, _) => other.host.ends_with(&format!(".{}", self.host)),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let star = if self.subdomains { "*." } else { "" };
        write!(f, "{}://{star}{}:{}", self.scheme, self.host, self.port)
    }
}

/// A plugin's outbound HTTP rules, built once at load and shared by its calls.
#[derive(Debug, Clone, Default)]
pub struct EgressRules {
    /// Reachable origins.
    pub origins: Vec<Origin>,
    /// Restricted address ranges the operator explicitly allowed.
    pub private_ranges: Vec<IpNet>,
    /// Secrets injected per origin.
    pub secrets: Vec<BoundSecret>,
    /// Largest request body a plugin may send.
    pub request_body_max: u64,
    /// Largest response body a plugin may receive.
    pub response_body_max: u64,
    /// Only GET, HEAD and OPTIONS may leave: set for the calls of a tool that
    /// claims no side effects (unless the operator pinned that claim). By
    /// default false: any method but TRACE and CONNECT.
    pub safe_methods_only: bool,
}

/// A secret the host adds to requests for one origin.
#[derive(Clone)]
pub struct BoundSecret {
    /// Secret name, for logs and inspection.
    pub name: String,
    /// Requests to this origin get the header.
    pub origin: Origin,
    /// Header name.
    pub header: http::HeaderName,
    /// Header value, with the secret already substituted.
    pub value: http::HeaderValue,
    /// The secret's value alone, masked in whatever comes back.
    pub secret: Vec<u8>,
    /// Methods that carry it; `None` for all.
    pub methods: Option<Vec<http::Method>>,
    /// Path prefixes that carry it; `None` for all.
    pub path_prefixes: Option<Vec<String>>,
}

impl BoundSecret {
    /// Whether a request with this method and path (and query) carries the
    /// secret. A path that could be read two ways never does when prefixes
    /// are set.
    pub fn applies(&self, method: &http::Method, path_and_query: &str) -> bool {
        if let Some(methods) = &self.methods
            && !methods.contains(method)
        {
            return false;
        }
        let Some(prefixes) = &self.path_prefixes else {
            return true;
        };
        let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
        plain_path(path)
            && prefixes.iter().any(|prefix| {
                path.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                    prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')
                })
            })
    }
}

impl std::fmt::Debug for BoundSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSecret")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// The capabilities a plugin actually gets: requested ∩ granted, within host limits.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// Preopened directories.
    pub directories: Vec<GrantedDirectory>,
    /// The same directories, opened once at load; calls never re-open them by path.
    pub preopens: crate::sandbox::Preopens,
    /// Outbound HTTP rules.
    pub egress: Arc<EgressRules>,
    /// Environment variables visible to the plugin.
    pub env: Vec<(String, String)>,
    /// Linear memory limit in bytes.
    pub memory_bytes: u64,
    /// Wall-time limit per call.
    pub time_limit: Duration,
    /// Largest output accepted, in bytes.
    pub output_max_bytes: usize,
    /// Calls of this plugin that may run at once.
    pub max_concurrent: u32,
    /// Fuel per call, when the host meters fuel.
    pub fuel: Option<u64>,
    /// Quota over the read-write directories, shared by the plugin's calls.
    pub disk_quota: Option<Arc<crate::sandbox::DiskQuota>>,
}

impl Effective {
    /// Intersects `requested` with `granted` within `limits`. `secrets` holds
    /// the values of the host's `[secrets]`, by name.
    ///
    /// Origins, ranges and bindings must already be valid: the config and
    /// manifest loaders check them; a value that still fails is an `Err`.
    pub fn intersect(
        requested: &Requested,
        granted: &Grants,
        limits: &Limits,
        secrets: &BTreeMap<String, SecretValue>,
    ) -> Result<Effective, String> {
        let directories: Vec<GrantedDirectory> = granted
            .directories
            .iter()
            .filter_map(|grant| {
                let request = requested
                    .directories
                    .iter()
                    .find(|r| r.guest == grant.guest)?;
                Some(GrantedDirectory {
                    access: grant.access.min(request.access),
                    ..grant.clone()
                })
            })
            .collect();

        let wants_any = requested.outbound_http.iter().any(|o| o == "*");
        let requested_origins: Vec<Origin> = requested
            .outbound_http
            .iter()
            .filter_map(|o| Origin::parse(o).ok())
            .collect();
        let mut origins: Vec<Origin> = Vec::new();
        for grant in &granted.outbound_http {
            let grant = Origin::parse(grant)?;
            if wants_any || requested_origins.iter().any(|r| r.covers(&grant)) {
                origins.push(grant);
            } else {
                origins.extend(
                    requested_origins
                        .iter()
                        .filter(|r| grant.covers(r))
                        .cloned(),
                );
            }
        }
        origins.dedup();
        let private_ranges = granted
            .private_ranges
            .iter()
            .map(|r| r.parse::<IpNet>().map_err(|e| format!("`{r}`: {e}")))
            .collect::<Result<_, _>>()?;
        let mut bound = Vec::new();
        for binding in &granted.secrets {
            let value = secrets
                .get(&binding.secret)
                .ok_or_else(|| format!("secret `{}` is not defined", binding.secret))?;
            let header_value = binding.format.replace("{secret}", value.expose());
            let mut header_value = http::HeaderValue::from_str(&header_value).map_err(|_| {
                format!(
                    "secret `{}` does not make a valid header value",
                    binding.secret
                )
            })?;
            header_value.set_sensitive(true);
            binding.validate()?;
            let methods = binding
                .methods
                .as_ref()
                .map(|methods| {
                    methods
                        .iter()
                        .map(|m| http::Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            bound.push(BoundSecret {
                name: binding.secret.clone(),
                origin: Origin::parse(&binding.origin)?,
                header: http::HeaderName::from_bytes(binding.header.as_bytes())
                    .map_err(|_| format!("`{}` is not a valid header name", binding.header))?,
                value: header_value,
                secret: value.expose().as_bytes().to_vec(),
                methods,
                path_prefixes: binding.path_prefixes.clone(),
            });
        }

        let env = granted
            .env
            .iter()
            .filter(|(name, _)| requested.env.contains(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        let memory_mb = lesser(requested.memory_mb, granted.memory_mb)
            .unwrap_or(limits.default_memory_mb)
            .min(limits.max_memory_mb);
        let time_limit_ms = lesser(requested.time_limit_ms, granted.time_limit_ms)
            .unwrap_or(limits.default_time_limit_ms)
            .min(limits.max_time_limit_ms);

        let preopens = crate::sandbox::Preopens::open(&directories)?;
        let disk_quota = granted
            .disk_quota_mb
            .map(|mb| Arc::new(crate::sandbox::DiskQuota::new(mb << 20, &preopens)));
        Ok(Effective {
            directories,
            preopens,
            egress: Arc::new(EgressRules {
                origins,
                private_ranges,
                secrets: bound,
                request_body_max: limits.http_request_body_max,
                response_body_max: limits.http_response_body_max,
                safe_methods_only: false,
            }),
            env,
            memory_bytes: memory_mb << 20,
            time_limit: Duration::from_millis(time_limit_ms),
            output_max_bytes: limits.output_max_bytes,
            max_concurrent: limits.concurrency(granted.max_concurrent),
            fuel: limits.fuel_per_call,
            disk_quota,
        })
    }

    /// What the manifest requests that the grants do not give, one line each.
    /// Limits are not listed: the operator capping them is normal.
    pub fn missing(requested: &Requested, granted: &Grants) -> Vec<String> {
        let mut missing = Vec::new();
        for dir in &requested.directories {
            match granted.directories.iter().find(|g| g.guest == dir.guest) {
                None => missing.push(format!(
                    "directory {} ({}) is not granted",
                    dir.guest,
                    dir.access.as_str()
                )),
                Some(g) if g.access < dir.access => missing.push(format!(
                    "directory {} is requested {} but granted {}",
                    dir.guest,
                    dir.access.as_str(),
                    g.access.as_str()
                )),
                Some(_) => {}
            }
        }
        let granted_origins: Vec<Origin> = granted
            .outbound_http
            .iter()
            .filter_map(|o| Origin::parse(o).ok())
            .collect();
        for origin in &requested.outbound_http {
            if origin == "*" {
                continue;
            }
            let covered = Origin::parse(origin)
                .map(|r| granted_origins.iter().any(|g| g.covers(&r)))
                .unwrap_or(false);
            if !covered {
                missing.push(format!("outbound_http {origin} is not granted"));
            }
        }
        for name in &requested.env {
            if !granted.env.contains_key(name) {
                missing.push(format!("env {name} is not granted"));
            }
        }
        missing
    }

    /// The form shown to policies (`input.capabilities`) and to operators:
    /// no host paths, no environment values, no secret values.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "directories": self.directories.iter()
                .map(|d| serde_json::json!({"guest": d.guest, "access": d.access}))
                .collect::<Vec<_>>(),
            "outbound_http": self.egress.origins.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
            "outbound_methods": if self.egress.safe_methods_only {
                serde_json::json!(["GET", "HEAD", "OPTIONS"])
            } else {
                serde_json::Value::Null
            },
            "private_ranges": self.egress.private_ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "secrets": self.egress.secrets.iter()
                .map(|s| serde_json::json!({
                    "secret": s.name,
                    "origin": s.origin.to_string(),
                    "header": s.header.as_str(),
                    "methods": s.methods.as_ref().map(|m| m.iter().map(http::Method::as_str).collect::<Vec<_>>()),
                    "path_prefixes": s.path_prefixes,
                }))
                .collect::<Vec<_>>(),
            "env": self.env.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "memory_mb": self.memory_bytes >> 20,
            "time_limit_ms": u64::try_from(self.time_limit.as_millis()).unwrap_or(u64::MAX),
            "max_concurrent": self.max_concurrent,
        })
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

impl Access {
    /// `ro` or `rw`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Ro => "ro",
            Access::Rw => "rw",
        }
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
    fn origins_parse_with_default_ports_and_refuse_paths_and_userinfo() {
        assert_eq!(origin("https://api.example.com").port, 443);
        assert_eq!(origin("http://127.0.0.1:8080").port, 8080);
        for bad in [
            "api.example.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://user@x.com",
            "https://x.com:99999",
            "https://*",
            "https://a.*.com",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn origin_matching_is_exact_on_scheme_host_and_port() {
        let o = origin("https://api.example.com");
        assert!(o.allows("https", "API.example.com", 443));
        assert!(!o.allows("http", "api.example.com", 443));
        assert!(!o.allows("https", "api.example.com", 8443));
        assert!(!o.allows("https", "api.example.com.evil.net", 443));
        let wild = origin("https://*.example.com");
        assert!(wild.allows("https", "a.b.example.com", 443));
        assert!(!wild.allows("https", "example.com", 443));
        assert!(!wild.allows("https", "badexample.com", 443));
    }

    #[test]
    fn effective_is_the_intersection_of_requested_and_granted() {
        let requested = Requested {
            directories: vec![
                RequestedDirectory {
                    guest: "/data".into(),
                    access: Access::Rw,
                },
                RequestedDirectory {
                    guest: "/cache".into(),
                    access: Access::Rw,
                },
            ],
            outbound_http: vec!["https://*.example.com".into()],
            env: vec!["LANG".into()],
            memory_mb: Some(128),
            time_limit_ms: None,
        };
        // Granted directories are opened while intersecting: they must exist.
        let d = tempfile::tempdir().unwrap();
        let granted = Grants {
            directories: vec![
                GrantedDirectory {
                    host: d.path().into(),
                    guest: "/data".into(),
                    access: Access::Ro,
                },
                GrantedDirectory {
                    host: "/srv/x".into(),
                    guest: "/other".into(),
                    access: Access::Rw,
                },
            ],
            outbound_http: vec!["https://api.example.com".into(), "https://evil.net".into()],
            env: [
                ("LANG".to_string(), "C".to_string()),
                ("SECRET".to_string(), "x".to_string()),
            ]
            .into(),
            memory_mb: Some(32),
            time_limit_ms: Some(100_000),
            ..Grants::default()
        };
        let eff = Effective::intersect(&requested, &granted, &Limits::default(), &BTreeMap::new())
            .unwrap();
        assert_eq!(eff.directories.len(), 1);
        assert_eq!(eff.directories[0].access, Access::Ro);
        assert_eq!(eff.egress.origins, vec![origin("https://api.example.com")]);
        assert_eq!(eff.env, vec![("LANG".to_string(), "C".to_string())]);
        assert_eq!(eff.memory_bytes, 32 << 20);
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
}
