//! Outbound HTTP: the origins a plugin may reach through `wasi:http`, the
//! restricted address ranges they may resolve to, and the secrets the host
//! injects into requests to one origin. Every request leaves through
//! [`egress`], the one choke point.

mod egress;
mod limit;

use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

use super::{Capability, GrantLoad, Host, HostSettings, Invalid, Prepare};

pub(crate) use egress::tls_config;
pub use egress::{Egress, ParsedUrl, parse_url, restricted};
pub use limit::RequestLimit;

/// The `outbound_http` capability (with its ranges and secrets).
#[derive(Debug)]
pub struct OutboundHttp;

/// `[capabilities] outbound_http`: by default none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpRequest {
    /// Origins for outbound HTTP (`https://api.example.com`, `https://*.example.com`),
    /// or `*` for "whatever the operator grants".
    pub outbound_http: Vec<String>,
}

/// `[plugins.NAME.grants] outbound_http, private_ranges, secrets`: by default none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpGrant {
    /// Origins the plugin may send HTTP requests to.
    pub outbound_http: Vec<String>,
    /// Restricted address ranges (CIDR, e.g. `127.0.0.0/8`) that granted origins
    /// may resolve to. By default loopback, private, link-local (cloud metadata)
    /// and other non-public addresses are refused.
    pub private_ranges: Vec<String>,
    /// Secrets the host injects as headers into requests to one origin.
    pub secrets: Vec<SecretBinding>,
}

impl Capability for OutboundHttp {
    const SUMMARY_FIELDS: &'static [&'static str] = &[
        "outbound_http",
        "outbound_methods",
        "private_ranges",
        "secrets",
    ];
    type Request = HttpRequest;
    type Grant = HttpGrant;
    type Effective = Arc<EgressRules>;
    type State = RequestLimit<Egress>;

    fn validate_request(request: &HttpRequest) -> Result<(), Invalid> {
        for (i, origin) in request.outbound_http.iter().enumerate() {
            if origin != "*" {
                Origin::parse(origin).map_err(|m| (format!("outbound_http[{i}]"), m))?;
            }
        }
        Ok(())
    }

    fn validate_grant(grant: &mut HttpGrant, load: &GrantLoad<'_>) -> Result<(), Invalid> {
        for (i, origin) in grant.outbound_http.iter().enumerate() {
            Origin::parse(origin).map_err(|m| (format!("outbound_http[{i}]"), m))?;
        }
        for (i, range) in grant.private_ranges.iter().enumerate() {
            range.parse::<IpNet>().map_err(|e| {
                (
                    format!("private_ranges[{i}]"),
                    format!("`{range}` is not a CIDR range like 127.0.0.0/8: {e}"),
                )
            })?;
        }
        for (i, binding) in grant.secrets.iter().enumerate() {
            let f = |name: &str| format!("secrets[{i}].{name}");
            if !load.secrets.contains_key(&binding.secret) {
                return Err((
                    f("secret"),
                    format!("no `[secrets.{}]` is defined", binding.secret),
                ));
            }
            Origin::parse(&binding.origin).map_err(|m| (f("origin"), m))?;
            http::HeaderName::from_bytes(binding.header.as_bytes()).map_err(|_| {
                (
                    f("header"),
                    format!("`{}` is not a header name", binding.header),
                )
            })?;
            binding
                .validate()
                .map_err(|m| (f("methods/path_prefixes"), m))?;
        }
        Ok(())
    }

    fn intersect(
        request: &HttpRequest,
        grant: &HttpGrant,
        host: &HostSettings<'_>,
    ) -> Result<Arc<EgressRules>, String> {
        let wants_any = request.outbound_http.iter().any(|o| o == "*");
        let requested_origins: Vec<Origin> = request
            .outbound_http
            .iter()
            .filter_map(|o| Origin::parse(o).ok())
            .collect();
        let mut origins: Vec<Origin> = Vec::new();
        for grant in &grant.outbound_http {
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
        let private_ranges = grant
            .private_ranges
            .iter()
            .map(|r| r.parse::<IpNet>().map_err(|e| format!("`{r}`: {e}")))
            .collect::<Result<_, _>>()?;
        let mut bound = Vec::new();
        for binding in &grant.secrets {
            let value = host
                .secrets
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
        Ok(Arc::new(EgressRules {
            origins,
            private_ranges,
            secrets: bound,
            request_body_max: host.limits.http_request_body_max,
            response_body_max: host.limits.http_response_body_max,
            safe_methods_only: false,
        }))
    }

    fn missing(request: &HttpRequest, grant: &HttpGrant, missing: &mut Vec<String>) {
        let granted_origins: Vec<Origin> = grant
            .outbound_http
            .iter()
            .filter_map(|o| Origin::parse(o).ok())
            .collect();
        for origin in &request.outbound_http {
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
    }

    fn summary(rules: &Arc<EgressRules>, summary: &mut serde_json::Map<String, serde_json::Value>) {
        summary.insert(
            "outbound_http".into(),
            rules.origins.iter().map(|o| o.to_string()).collect(),
        );
        summary.insert(
            "outbound_methods".into(),
            if rules.safe_methods_only {
                serde_json::json!(["GET", "HEAD", "OPTIONS"])
            } else {
                serde_json::Value::Null
            },
        );
        summary.insert(
            "private_ranges".into(),
            rules.private_ranges.iter().map(|r| r.to_string()).collect(),
        );
        summary.insert(
            "secrets".into(),
            rules
                .secrets
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "secret": s.name,
                        "origin": s.origin.to_string(),
                        "header": s.header.as_str(),
                        "methods": s.methods.as_ref().map(|m| m.iter().map(http::Method::as_str).collect::<Vec<_>>()),
                        "path_prefixes": s.path_prefixes,
                    })
                })
                .collect(),
        );
    }

    /// A tool that claims no side effects keeps outbound HTTP only for safe
    /// methods (GET, HEAD, OPTIONS).
    fn without_side_effects(rules: &Arc<EgressRules>) -> Result<Option<Arc<EgressRules>>, String> {
        Ok((!rules.origins.is_empty()).then(|| {
            Arc::new(EgressRules {
                safe_methods_only: true,
                ..(**rules).clone()
            })
        }))
    }

    /// `wasi:http/outgoing-handler`, answered only by [`Egress`].
    fn link<T: Host>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn prepare(rules: &Arc<EgressRules>, _call: &mut Prepare<'_>) -> RequestLimit<Egress> {
        RequestLimit::new(Egress::new(rules.clone()))
    }

    fn refusals(state: &RequestLimit<Egress>) -> Vec<String> {
        state.inner.refusals()
    }
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
}
