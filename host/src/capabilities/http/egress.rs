//! Outbound HTTP: the single choke point through which a plugin's `wasi:http`
//! requests leave the sandbox.
//!
//! For every request, before any byte leaves the host:
//! 1. the URL, read by [`parse_url`] (the parser policy gets as
//!    `warden.parse_url`), must name a granted origin (scheme, host, port) and
//!    carry no userinfo;
//! 2. the host resolves the name itself, and every address it resolves to must be
//!    public unless the operator granted that private range (loopback, private,
//!    link-local and cloud-metadata addresses are refused by default);
//! 3. the connection goes to a vetted address, never to a second lookup (no DNS
//!    rebinding between check and connect);
//! 4. a tool that claims no side effects sends only GET, HEAD and OPTIONS;
//! 5. secrets bound to the origin (and to the binding's methods and paths) are
//!    injected as headers, and scrubbed from whatever comes back: the guest
//!    never sees them; TRACE, TRACK and CONNECT are never sent;
//! 6. request and response bodies are bounded.
//!
//! Redirects are not followed here: a plugin that follows one makes a new
//! request, which is checked from step 1 again. Refusals are remembered so the
//! call is reported as `capability-denied`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use http::Method;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capabilities::{BoundSecret, EgressRules, forbidden_method};

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

const DNS_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-call egress state: the shared rules plus what this call was refused.
pub struct Egress {
    rules: Arc<EgressRules>,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress").finish_non_exhaustive()
    }
}

impl Egress {
    pub(super) fn new(rules: Arc<EgressRules>) -> Egress {
        Egress {
            rules,
            refusals: Arc::default(),
        }
    }

    /// What this call tried and was refused, in order.
    pub(super) fn refusals(&self) -> Vec<String> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Refusals kept per call, and the longest one kept: they go into the audit
/// record, and a plugin can provoke as many as it likes.
const REFUSALS_MAX: usize = 32;
const REFUSAL_MAX_BYTES: usize = 512;

/// Remembers one refusal, bounded in number and length.
fn remember(refusals: &Mutex<Vec<String>>, mut reason: String) {
    let Ok(mut refusals) = refusals.lock() else {
        return;
    };
    if refusals.len() > REFUSALS_MAX {
        return;
    }
    if refusals.len() == REFUSALS_MAX {
        refusals.push("further refusals of this call were not recorded".to_string());
        return;
    }
    if reason.len() > REFUSAL_MAX_BYTES {
        let kept = crate::bounds::prefix(&reason, REFUSAL_MAX_BYTES).len();
        reason.truncate(kept);
        reason.push('…');
    }
    refusals.push(reason);
}

enum Outcome {
    Refused(String),
    Failed(Error),
}

impl From<Error> for Outcome {
    fn from(e: Error) -> Self {
        Outcome::Failed(e)
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> SendFuture {
        let rules = self.rules.clone();
        let refusals = self.refusals.clone();
        Box::new(async move {
            match send(&rules, request, options, &refusals).await {
                Ok(response) => Ok(response),
                Err(Outcome::Refused(reason)) => {
                    tracing::warn!(reason = %reason.escape_debug(), "outbound request refused");
                    remember(&refusals, reason);
                    Err(Error::HttpRequestDenied)
                }
                Err(Outcome::Failed(e)) => Err(e),
            }
        })
    }
}

async fn send(
    rules: &EgressRules,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    refusals: &Arc<Mutex<Vec<String>>>,
) -> Result<(http::Response<WasiBody>, IoFuture), Outcome> {
    let uri = request.uri().clone();
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    // The request line carries only the path; the origin is in the Host header.
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if authority.as_str().contains('@') {
        return Err(Outcome::Refused(format!(
            "{scheme}://{authority}: URLs with userinfo are refused"
        )));
    }
    // Read the destination with the same parser policy uses
    // (`warden.parse_url`): what policy allowed is where this connects.
    let target = parse_url(&format!("{scheme}://{authority}{path}"))
        .filter(|t| matches!(t.scheme.as_str(), "http" | "https"))
        .ok_or_else(|| {
            Outcome::Refused(format!(
                "{scheme}://{authority}: not an http(s) URL the host can read"
            ))
        })?;
    let https = target.scheme == "https";
    let scheme = target.scheme.as_str();
    let (host, port) = (target.host.as_str(), target.port);
    let method = request.method().clone();
    if forbidden_method(method.as_str()) {
        return Err(Outcome::Refused(format!(
            "{method} {scheme}://{host}:{port}: TRACE, TRACK and CONNECT are never sent \
             (they echo injected secrets or open tunnels)"
        )));
    }
    if rules.safe_methods_only && !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Err(Outcome::Refused(format!(
            "{method} {scheme}://{host}:{port}: the tool claims no side effects, so only \
             GET, HEAD and OPTIONS may leave"
        )));
    }
    if !rules.origins.iter().any(|o| o.allows(scheme, host, port)) {
        return Err(Outcome::Refused(format!(
            "origin {scheme}://{host}:{port} is not granted"
        )));
    }

    let addresses = resolve(host, port).await?;
    for address in &addresses {
        if let Some(class) = restricted(address.ip())
            && !rules
                .private_ranges
                .iter()
                .any(|r| r.contains(&address.ip()))
        {
            return Err(Outcome::Refused(format!(
                "{host} resolves to {}, a {class} address, which is not granted",
                address.ip()
            )));
        }
    }

    let mut sent = Vec::new();
    for secret in &rules.secrets {
        if secret.origin.allows(scheme, host, port) && secret.applies(&method, path) {
            request
                .headers_mut()
                .insert(secret.header.clone(), secret.value.clone());
            sent.push(secret);
        }
    }
    if !sent.is_empty() {
        // A compressed echo of the secret could not be scrubbed: ask for none.
        request.headers_mut().insert(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("identity"),
        );
    }
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(CONNECT_TIMEOUT);
    let stream = connect(&addresses, connect_timeout).await?;
    let request_limit = rules.request_body_max;
    let request = request.map(move |body| {
        Limited::new(body, usize::try_from(request_limit).unwrap_or(usize::MAX))
            .map_err(|e| body_error(e, Error::HttpRequestBodySize(None)))
            .boxed_unsync()
    });

    let (mut sender, connection) = if https {
        let tls = tls_connector()
            .connect(server_name(host)?, stream)
            .await
            .map_err(Error::Tls)?;
        handshake(TokioIo::new(Box::new(tls) as Box<dyn Stream>)).await?
    } else {
        handshake(TokioIo::new(Box::new(stream) as Box<dyn Stream>)).await?
    };
    let mut connection = Box::pin(connection);
    let mut answer = Box::pin(sender.send_request(request));
    let response = tokio::select! {
        response = &mut answer => response.map_err(Error::from)?,
        done = &mut connection => {
            done.map_err(Error::from)?;
            // A server that answers and closes (`connection: close`) ends the
            // connection in the same poll that hands over its answer.
            answer.await.map_err(|_| Error::HttpResponseIncomplete)?
        }
    };

    let origin = format!("{scheme}://{host}:{port}");
    let mut response = response;
    let scrub = if sent.is_empty() {
        None
    } else {
        Some(scrub_headers(
            response.headers_mut(),
            &sent,
            &origin,
            refusals,
        )?)
    };
    let response_limit = rules.response_body_max;
    let refusals = refusals.clone();
    let response = response.map(move |body| {
        let limited = Limited::new(body, usize::try_from(response_limit).unwrap_or(usize::MAX))
            .map_err(move |e| {
                if e.is::<LengthLimitError>() {
                    remember(
                        &refusals,
                        format!(
                            "the response body from {origin} exceeded the limit of {response_limit} bytes"
                        ),
                    );
                }
                body_error(e, Error::HttpResponseBodySize(Some(response_limit)))
            })
            .boxed_unsync();
        match scrub {
            Some(scrubbed) => scrubbed.wrap(limited).boxed_unsync(),
            None => limited,
        }
    });
    let io: IoFuture = Box::new(async move { connection.await.map_err(Error::from) });
    Ok((response, io))
}

/// Masks the secrets sent with a request wherever its response could hand
/// them back to the plugin: header values (here), the body and trailers
/// ([`Scrub::wrap`]). A response in a content encoding other than `identity`
/// is refused: an encoded echo could not be found.
fn scrub_headers(
    headers: &mut http::HeaderMap,
    sent: &[&BoundSecret],
    origin: &str,
    refusals: &Arc<Mutex<Vec<String>>>,
) -> Result<Scrub, Outcome> {
    let names = sent
        .iter()
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(encoding) = headers.get(http::header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(Outcome::Refused(format!(
            "the response of {origin} to a request carrying secret {names} is encoded \
             ({}), so it cannot be scrubbed",
            String::from_utf8_lossy(encoding.as_bytes())
        )));
    }
    let scrub = Scrub {
        secrets: sent.iter().map(|s| s.secret.clone()).collect(),
        found: Arc::new(Once::new()),
        report: Arc::new({
            let refusals = refusals.clone();
            let message = format!("secret {names} was scrubbed from the response of {origin}");
            move || remember(&refusals, message.clone())
        }),
    };
    if scrub.headers(headers) {
        scrub.found();
    }
    Ok(scrub)
}

/// The secrets to mask in one response, and a report made once if any is found.
struct Scrub {
    secrets: Arc<[Vec<u8>]>,
    found: Arc<Once>,
    report: Arc<dyn Fn() + Send + Sync>,
}

impl Scrub {
    fn found(&self) {
        self.found.call_once(|| (self.report)());
    }

    /// Replaces every occurrence of a secret in `bytes` with as many `*`
    /// (the length is kept, so `content-length` stays true).
    fn mask(&self, bytes: &mut [u8]) -> bool {
        let mut found = false;
        for secret in self.secrets.iter().filter(|s| !s.is_empty()) {
            let mut at = 0;
            while at + secret.len() <= bytes.len() {
                if bytes[at..].starts_with(secret) {
                    bytes[at..at + secret.len()].fill(b'*');
                    found = true;
                    at += secret.len();
                } else {
                    at += 1;
                }
            }
        }
        found
    }

    fn headers(&self, headers: &mut http::HeaderMap) -> bool {
        let mut found = false;
        for value in headers.values_mut() {
            let mut bytes = value.as_bytes().to_vec();
            if self.mask(&mut bytes)
                && let Ok(masked) = http::HeaderValue::from_bytes(&bytes)
            {
                *value = masked;
                found = true;
            }
        }
        found
    }

    /// Longest secret less one: the bytes held back between frames, since
    /// they may be the start of a secret the next frame completes.
    fn overlap(&self) -> usize {
        self.secrets
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .saturating_sub(1)
    }

    fn wrap(self, inner: WasiBody) -> Scrubbed {
        Scrubbed {
            inner,
            scrub: self,
            held: Vec::new(),
            trailers: None,
            finished: false,
        }
    }
}

/// A response body with the request's secrets masked, also where a secret
/// spans two frames.
struct Scrubbed {
    inner: WasiBody,
    scrub: Scrub,
    /// Bytes not yet handed on: the tail that may start a secret.
    held: Vec<u8>,
    /// Trailers that arrived while bytes were held.
    trailers: Option<http::HeaderMap>,
    /// The inner body has ended (or sent its trailers).
    finished: bool,
}

impl http_body::Body for Scrubbed {
    type Data = bytes::Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        loop {
            if this.finished {
                if !this.held.is_empty() {
                    let rest = std::mem::take(&mut this.held);
                    return Poll::Ready(Some(Ok(http_body::Frame::data(rest.into()))));
                }
                return Poll::Ready(
                    this.trailers
                        .take()
                        .map(|t| Ok(http_body::Frame::trailers(t))),
                );
            }
            let frame = match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.finished = true;
                    continue;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match frame.into_data() {
                Ok(data) => {
                    this.held.extend_from_slice(&data);
                    if this.scrub.mask(&mut this.held) {
                        this.scrub.found();
                    }
                    let release = this.held.len().saturating_sub(this.scrub.overlap());
                    if release > 0 {
                        let out: Vec<u8> = this.held.drain(..release).collect();
                        return Poll::Ready(Some(Ok(http_body::Frame::data(out.into()))));
                    }
                }
                Err(frame) => {
                    if let Ok(mut trailers) = frame.into_trailers() {
                        if this.scrub.headers(&mut trailers) {
                            this.scrub.found();
                        }
                        this.trailers = Some(trailers);
                    }
                    this.finished = true;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.held.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        // Masking keeps lengths; what is held is still to come.
        let inner = self.inner.size_hint();
        let held = self.held.len() as u64;
        let mut hint = http_body::SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint.set_lower(inner.lower().saturating_add(held));
        hint
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

type Connection = hyper::client::conn::http1::Connection<TokioIo<Box<dyn Stream>>, WasiBody>;

async fn handshake(
    io: TokioIo<Box<dyn Stream>>,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<WasiBody>,
        Connection,
    ),
    Outcome,
> {
    Ok(hyper::client::conn::http1::handshake(io)
        .await
        .map_err(Error::from)?)
}

fn body_error(e: Box<dyn std::error::Error + Send + Sync>, too_large: Error) -> Error {
    if e.is::<LengthLimitError>() {
        return too_large;
    }
    match e.downcast::<Error>() {
        Ok(e) => *e,
        Err(e) => match e.downcast::<hyper::Error>() {
            Ok(e) => Error::from(*e),
            Err(e) => Error::InternalError(Some(e.to_string())),
        },
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Outcome> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let dns_error = |info: &str| Error::DnsError {
        rcode: Some(info.to_string()),
        info_code: None,
    };
    let addresses: Vec<SocketAddr> =
        tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| Error::DnsTimeout)?
            .map_err(|e| dns_error(&e.to_string()))?
            .collect();
    if addresses.is_empty() {
        return Err(dns_error("no addresses").into());
    }
    Ok(addresses)
}

async fn connect(
    addresses: &[SocketAddr],
    timeout: Duration,
) -> Result<tokio::net::TcpStream, Outcome> {
    let mut last = Error::ConnectionRefused;
    for address in addresses {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last.into())
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(tls_config())
}

/// The TLS client settings of every connection the host opens for others
/// (plugin egress, provider requests): ring, the webpki roots, no client
/// certificate.
pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                }),
            )
        })
        .clone()
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Outcome> {
    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| {
        Outcome::Failed(Error::DnsError {
            rcode: Some(format!("`{host}` is not a valid TLS server name")),
            info_code: None,
        })
    })
}

/// Longest URL [`parse_url`] reads; longer text is not a URL.
const URL_MAX_BYTES: usize = 64 * 1024;

/// A URL as Warden reads it, for egress and for policy (`warden.parse_url`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParsedUrl {
    /// Lowercase scheme, e.g. `https`.
    pub scheme: String,
    /// Normalised host: lowercase ASCII (IDNA), IPv4 in dotted decimal,
    /// IPv6 without brackets, no trailing dot.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Path, percent-encoded as sent.
    pub path: String,
    /// Query without `?`, if any.
    pub query: Option<String>,
    /// Fragment without `#`, if any (never sent).
    pub fragment: Option<String>,
    /// User name of the userinfo; empty when there is none.
    pub username: String,
    /// Whether the userinfo has a password.
    pub has_password: bool,
}

/// Parses `text` as the WHATWG URL standard does (the `url` crate: what
/// browsers and the fetch plugin do), or `None` when it is not a URL with a
/// host and a known default port. `http://a#@b`, `http://a?@b` and
/// `http://a\@b` all have host `a`; `http://2130706433` and `http://0x7f.1`
/// have host `127.0.0.1`.
pub fn parse_url(text: &str) -> Option<ParsedUrl> {
    if text.len() > URL_MAX_BYTES {
        return None;
    }
    let url = url::Url::parse(text).ok()?;
    let host = match url.host()? {
        url::Host::Domain(domain) => domain.strip_suffix('.').unwrap_or(domain).to_string(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    if host.is_empty() {
        return None;
    }
    Some(ParsedUrl {
        scheme: url.scheme().to_string(),
        port: url.port_or_known_default()?,
        path: url.path().to_string(),
        query: url.query().map(str::to_string),
        fragment: url.fragment().map(str::to_string),
        username: url.username().to_string(),
        has_password: url.password().is_some(),
        host,
    })
}

/// Why an address is not reachable without an explicit grant, or `None` if it is public.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata)")
            } else if v4.is_private() {
                Some("private")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                Some("broadcast, multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return restricted(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            if segments[0] == 0x64 && segments[1] == 0xff9b {
                // NAT64: the IPv4 address is in the last 32 bits.
                let o = v6.octets();
                return restricted(IpAddr::V4(std::net::Ipv4Addr::new(
                    o[12], o[13], o[14], o[15],
                )));
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (segments[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (segments[0] & 0xfe00) == 0xfc00 {
                Some("unique local (private)")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_url, restricted};

    #[test]
    fn urls_are_read_as_browsers_read_them() {
        for (url, host, port) in [
            ("http://127.0.0.1:8080#@example.com", "127.0.0.1", 8080),
            ("http://127.0.0.1:8080?@example.com", "127.0.0.1", 8080),
            ("http://example.com@127.0.0.1:8080/", "127.0.0.1", 8080),
            ("http://127.0.0.1:8080\\@example.com/", "127.0.0.1", 8080),
            ("HTTP://EXAMPLE.COM./", "example.com", 80),
            ("https://Bücher.example/", "xn--bcher-kva.example", 443),
            ("http://2130706433/", "127.0.0.1", 80),
            ("http://0x7f.1/", "127.0.0.1", 80),
            ("http://[::FFFF:127.0.0.1]:81/", "::ffff:127.0.0.1", 81),
        ] {
            let parsed = parse_url(url).unwrap_or_else(|| panic!("{url}"));
            assert_eq!((parsed.host.as_str(), parsed.port), (host, port), "{url}");
        }
        for bad in [
            "http://example.com%40127.0.0.1/",
            "not a url",
            "mailto:a@b.c",
            "http://./",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn restricted_addresses_are_classified() {
        for (ip, class) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local (cloud metadata)")),
            ("100.100.100.200", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local (cloud metadata)")),
            ("fd00:ec2::254", Some("unique local (private)")),
            ("fe80::1", Some("link-local")),
            ("93.184.216.34", None),
            ("2606:2800:220:1::1", None),
        ] {
            assert_eq!(restricted(ip.parse().unwrap()), class, "{ip}");
        }
    }
}
