//! Capabilities: what a plugin requests, what the operator grants, and the
//! effective set (their intersection) that the sandbox is built from.
//!
//! Anything not in the effective set is absent from the sandbox: no preopen,
//! no environment variable, no reachable host.

use std::path::PathBuf;
use std::time::Duration;

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
#[derive(Debug, Clone, Default, Deserialize)]
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
}

/// A host directory granted to a plugin.
#[derive(Debug, Clone, Deserialize)]
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_memory_mb: 64,
            max_memory_mb: 1024,
            default_time_limit_ms: 5000,
            max_time_limit_ms: 60_000,
            output_max_bytes: 1 << 20,
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

/// The capabilities a plugin actually gets: requested ∩ granted, within host limits.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// Preopened directories.
    pub directories: Vec<GrantedDirectory>,
    /// Reachable origins.
    pub outbound_http: Vec<Origin>,
    /// Environment variables visible to the plugin.
    pub env: Vec<(String, String)>,
    /// Linear memory limit in bytes.
    pub memory_bytes: u64,
    /// Wall-time limit per call.
    pub time_limit: Duration,
    /// Largest output accepted, in bytes.
    pub output_max_bytes: usize,
}

impl Effective {
    /// Intersects `requested` with `granted` within `limits`.
    ///
    /// Origins must already be valid: the config and manifest loaders check them.
    pub fn intersect(requested: &Requested, granted: &Grants, limits: &Limits) -> Effective {
        let directories = granted
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
        let mut outbound_http: Vec<Origin> = Vec::new();
        for grant in granted
            .outbound_http
            .iter()
            .filter_map(|o| Origin::parse(o).ok())
        {
            if wants_any || requested_origins.iter().any(|r| r.covers(&grant)) {
                outbound_http.push(grant);
            } else {
                outbound_http.extend(
                    requested_origins
                        .iter()
                        .filter(|r| grant.covers(r))
                        .cloned(),
                );
            }
        }
        outbound_http.dedup();

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

        Effective {
            directories,
            outbound_http,
            env,
            memory_bytes: memory_mb << 20,
            time_limit: Duration::from_millis(time_limit_ms),
            output_max_bytes: limits.output_max_bytes,
        }
    }

    /// Whether an outbound request to `scheme://host:port` is allowed.
    pub fn allows_outbound(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.outbound_http
            .iter()
            .any(|o| o.allows(scheme, host, port))
    }

    /// The form shown to policies (`input.capabilities`) and to operators:
    /// no host paths and no environment values.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "directories": self.directories.iter()
                .map(|d| serde_json::json!({"guest": d.guest, "access": d.access}))
                .collect::<Vec<_>>(),
            "outbound_http": self.outbound_http.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
            "env": self.env.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "memory_mb": self.memory_bytes >> 20,
            "time_limit_ms": u64::try_from(self.time_limit.as_millis()).unwrap_or(u64::MAX),
        })
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
        let granted = Grants {
            directories: vec![
                GrantedDirectory {
                    host: "/srv/d".into(),
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
        };
        let eff = Effective::intersect(&requested, &granted, &Limits::default());
        assert_eq!(eff.directories.len(), 1);
        assert_eq!(eff.directories[0].access, Access::Ro);
        assert_eq!(eff.outbound_http, vec![origin("https://api.example.com")]);
        assert_eq!(eff.env, vec![("LANG".to_string(), "C".to_string())]);
        assert_eq!(eff.memory_bytes, 32 << 20);
        assert_eq!(eff.time_limit, Duration::from_millis(60_000));
    }
}
