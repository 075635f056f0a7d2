//! The wire to model providers, which the host owns: an adapter's request is
//! sent only to its model's configured origin, with the credential the host
//! adds where the adapter says, over pooled connections (one pool per origin,
//! TLS with the same settings as plugin egress), without redirects or
//! proxies, within the model's time limit and body limits.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use crate::capabilities::SecretValue;
use crate::error::{CallError, ErrorCode};
use crate::sandbox::chat::{Credential, HttpRequest, HttpResponse};

/// Headers an adapter may set on one request, and the longest value.
const HEADERS_MAX: usize = 64;
const HEADER_VALUE_MAX: usize = 8 * 1024;
/// Response headers handed to the adapter, and the longest value kept.
const RESPONSE_HEADERS_MAX: usize = 64;
const RESPONSE_HEADER_VALUE_MAX: usize = 4 * 1024;
/// Largest request body an adapter may send.
const REQUEST_BODY_MAX: usize = 32 << 20;
/// Longest path (with query) an adapter may ask for.
const PATH_MAX: usize = 2048;

/// Headers the host sets itself or that commonly carry a credential (for
/// this provider or another): an adapter's value for any of them is dropped.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-auth-token",
    "x-amz-security-token",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "traceparent",
    "tracestate",
];

/// The HTTP client every model shares; it pools connections per origin.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
}

/// Where one model's requests go and how they are bounded.
#[derive(Debug)]
pub(crate) struct Route<'a> {
    pub(crate) origin: &'a url::Url,
    pub(crate) secret: Option<&'a SecretValue>,
    pub(crate) credential: &'a Credential,
    pub(crate) deadline: tokio::time::Instant,
    pub(crate) max_response_bytes: usize,
    /// The trace context to pass on ([`crate::telemetry::outgoing`]).
    pub(crate) trace: Option<&'a crate::trace::TraceParent>,
}

impl Transport {
    /// The shared client: no redirects (they could leave the origin), no
    /// proxy from the environment, idle connections kept 90 s.
    pub(crate) fn new() -> Result<Transport, String> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*crate::capabilities::http::tls_config()).clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the provider HTTP client: {e}"))?;
        Ok(Transport { client })
    }

    /// Sends `request` on `route` and reads the whole answer.
    pub(crate) async fn exchange(
        &self,
        route: &Route<'_>,
        request: HttpRequest,
    ) -> Result<HttpResponse, CallError> {
        let response = self.open(route, request).await?;
        answer(route, response).await
    }

    /// Sends `request` on `route`; the answer's status and headers have
    /// arrived, its body is still to be read.
    pub(crate) async fn open(
        &self,
        route: &Route<'_>,
        request: HttpRequest,
    ) -> Result<reqwest::Response, CallError> {
        let origin = route.origin.as_str().trim_end_matches('/');
        let sent = self.send(route, request);
        tokio::time::timeout_at(route.deadline, sent)
            .await
            .map_err(|_| deadline(origin))?
    }

    async fn send(
        &self,
        route: &Route<'_>,
        request: HttpRequest,
    ) -> Result<reqwest::Response, CallError> {
        let origin = route.origin.as_str().trim_end_matches('/');
        let url = join(route.origin, &request.path).map_err(adapter_fault)?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| adapter_fault(format!("`{}` is not an HTTP method", request.method)))?;
        if request.body.len() > REQUEST_BODY_MAX {
            return Err(adapter_fault(format!(
                "its request body of {} bytes is over the limit of {REQUEST_BODY_MAX}",
                request.body.len()
            )));
        }
        let mut headers = http::HeaderMap::new();
        if request.headers.len() > HEADERS_MAX {
            return Err(adapter_fault(format!(
                "it set {} headers; at most {HEADERS_MAX} are allowed",
                request.headers.len()
            )));
        }
        let credential_header = match route.credential {
            Credential::Bearer => None,
            Credential::Header(name) => Some(name.to_ascii_lowercase()),
        };
        for (name, value) in &request.headers {
            let name = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&name.as_str())
                || name.starts_with("proxy-")
                || credential_header.as_deref() == Some(name.as_str())
            {
                continue;
            }
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| adapter_fault(format!("`{name}` is not a header name")))?;
            if value.len() > HEADER_VALUE_MAX {
                return Err(adapter_fault(format!("header `{name}` is too long")));
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| adapter_fault(format!("header `{name}` has an invalid value")))?;
            headers.append(header, value);
        }
        if let Some(secret) = route.secret {
            let (name, value) = match route.credential {
                Credential::Bearer => (
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", secret.expose()),
                ),
                Credential::Header(name) => (
                    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
                        adapter_fault(format!("`{name}` is not a header name for the credential"))
                    })?,
                    secret.expose().to_string(),
                ),
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                CallError::new(
                    ErrorCode::ProviderError,
                    "the model's secret cannot be sent in an HTTP header",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(trace) = route.trace
            && let Ok(value) = HeaderValue::from_str(trace.as_str())
        {
            headers.insert(HeaderName::from_static("traceparent"), value);
        }
        self.client
            .request(method, url)
            .headers(headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| {
                CallError::new(
                    ErrorCode::ProviderUnavailable,
                    format!(
                        "the provider at {origin} could not be reached: {}",
                        cause(&e)
                    ),
                )
            })
    }
}

/// The whole of an opened answer, within the route's deadline and size limit.
pub(crate) async fn answer(
    route: &Route<'_>,
    response: reqwest::Response,
) -> Result<HttpResponse, CallError> {
    let origin = route.origin.as_str().trim_end_matches('/');
    let status = response.status().as_u16();
    let headers = response_headers(response.headers());
    let read = read_body(response, route.max_response_bytes, origin);
    let body = tokio::time::timeout_at(route.deadline, read)
        .await
        .map_err(|_| deadline(origin))??;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// `path` joined to `origin`, refused unless the result is still on `origin`.
fn join(origin: &url::Url, path: &str) -> Result<url::Url, String> {
    let plain = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= PATH_MAX
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#');
    if !plain {
        return Err(format!(
            "its request path must start with a single `/` and hold at most {PATH_MAX} \
             printable ASCII characters without `\\` or `#`"
        ));
    }
    let url = origin
        .join(path)
        .map_err(|e| format!("its request path does not join the origin: {e}"))?;
    if url.origin() != origin.origin() {
        return Err("its request path leaves the model's origin".into());
    }
    Ok(url)
}

fn response_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            (value.len() <= RESPONSE_HEADER_VALUE_MAX)
                .then(|| (name.as_str().to_string(), value.to_string()))
        })
        .take(RESPONSE_HEADERS_MAX)
        .collect()
}

async fn read_body(
    mut response: reqwest::Response,
    max: usize,
    origin: &str,
) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            CallError::new(
                ErrorCode::ProviderUnavailable,
                format!(
                    "the provider at {origin} broke off its answer: {}",
                    cause(&e)
                ),
            )
        })?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() + chunk.len() > max {
            return Err(CallError::new(
                ErrorCode::ProviderError,
                format!("the provider at {origin} answered with more than {max} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
}

fn deadline(origin: &str) -> CallError {
    CallError::new(
        ErrorCode::Timeout,
        format!("the provider at {origin} did not answer within the model's time limit"),
    )
}

fn adapter_fault(message: String) -> CallError {
    CallError::new(
        ErrorCode::ProviderError,
        format!("the adapter's request was refused: {message}"),
    )
}

/// The innermost cause of a client error (reqwest's own message is generic).
fn cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    crate::bounds::prefix(&source.to_string(), 512).to_string()
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn only_paths_on_the_origin_are_joined() {
        let origin = url::Url::parse("https://api.example.com").expect("origin");
        assert_eq!(
            join(&origin, "/v1/chat/completions?x=1")
                .expect("joins")
                .as_str(),
            "https://api.example.com/v1/chat/completions?x=1"
        );
        for path in [
            "//evil.example/x",
            "https://evil.example/x",
            "v1/relative",
            "/a\\..\\b",
            "/x#frag",
            "/\u{7f}",
            "/ space",
            "",
        ] {
            assert!(join(&origin, path).is_err(), "{path:?} was joined");
        }
        assert_eq!(
            join(&origin, "/../../etc/passwd").expect("stays").as_str(),
            "https://api.example.com/etc/passwd"
        );
    }
}
