//! `fetch`: fetches a URL over outbound HTTP (`wasi:http`).
//!
//! Every request goes through the host, which lets it out only to the hosts the
//! operator granted; this plugin does no filtering of its own.

use serde::Deserialize;
use serde_json::json;
use warden_plugin_sdk::{
    Guest, ToolDescriptor, ToolError, TransientError, descriptor, output, parse_args,
};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

const DEFAULT_MAX_BYTES: usize = 256 * 1024;

struct Fetch;

const MAX_REDIRECTS: usize = 5;

#[derive(Deserialize)]
struct GetArgs {
    url: String,
    #[serde(default)]
    max_bytes: Option<usize>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

struct Fetched {
    status: u16,
    location: Option<String>,
    retry_after_ms: Option<u32>,
    body: Vec<u8>,
    truncated: bool,
}

fn failed(message: impl Into<String>) -> ToolError {
    ToolError::Failed(message.into())
}

/// Errors worth retrying are reported as transient; a refusal by the host is not.
fn from_error_code(code: ErrorCode) -> ToolError {
    match code {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached => ToolError::Transient(TransientError {
            message: format!("{code:?}"),
            retry_after_ms: None,
        }),
        other => failed(format!("request failed: {other:?}")),
    }
}

/// GETs `url`, following up to [`MAX_REDIRECTS`] redirects; each hop is a new
/// request that the host checks on its own.
fn get(args: &GetArgs) -> Result<serde_json::Value, ToolError> {
    let max_bytes = args.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    let mut url =
        url::Url::parse(&args.url).map_err(|e| ToolError::InvalidInput(format!("url: {e}")))?;
    for _ in 0..=MAX_REDIRECTS {
        let fetched = request(&url, &args.headers, max_bytes)?;
        match fetched.location {
            Some(location) if (300..400).contains(&fetched.status) => {
                url = url
                    .join(&location)
                    .map_err(|e| failed(format!("bad redirect `{location}`: {e}")))?;
            }
            _ if fetched.status == 429 || fetched.status == 503 => {
                return Err(ToolError::Transient(TransientError {
                    message: format!("{url} answered HTTP {}", fetched.status),
                    retry_after_ms: fetched.retry_after_ms,
                }));
            }
            _ => {
                return Ok(json!({
                    "status": fetched.status,
                    "url": url.as_str(),
                    "body": String::from_utf8_lossy(&fetched.body),
                    "truncated": fetched.truncated,
                }));
            }
        }
    }
    Err(failed(format!("more than {MAX_REDIRECTS} redirects")))
}

fn request(
    parsed: &url::Url,
    headers: &std::collections::BTreeMap<String, String>,
    max_bytes: usize,
) -> Result<Fetched, ToolError> {
    let scheme = match parsed.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => {
            return Err(ToolError::InvalidInput(format!(
                "unsupported scheme `{other}`"
            )));
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| ToolError::InvalidInput("url has no host".into()))?;
    let authority = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };

    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| ToolError::InvalidInput(format!("header `{name}`: {e:?}")))?;
    }
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&Method::Get)
        .map_err(|()| failed("set method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| failed("set scheme"))?;
    request
        .set_authority(Some(&authority))
        .map_err(|()| failed("set authority"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| failed("set path"))?;
    let body = request.body().map_err(|()| failed("request body"))?;
    let pending = outgoing_handler::handle(request, None).map_err(from_error_code)?;
    OutgoingBody::finish(body, None).map_err(from_error_code)?;

    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or_else(|| failed("response not ready"))?
        .map_err(|()| failed("response already taken"))?
        .map_err(from_error_code)?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let retry_after_ms = response
        .headers()
        .get("retry-after")
        .first()
        .and_then(|v| String::from_utf8_lossy(v).trim().parse::<u32>().ok())
        .map(|seconds| seconds.saturating_mul(1000));
    let incoming = response.consume().map_err(|()| failed("response body"))?;
    let stream = incoming.stream().map_err(|()| failed("response stream"))?;
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > max_bytes {
                    bytes.truncate(max_bytes);
                    truncated = true;
                    break;
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(failed(format!("reading body: {}", e.to_debug_string())));
            }
        }
    }
    drop(stream);
    drop(incoming);
    Ok(Fetched {
        status,
        location,
        retry_after_ms,
        body: bytes,
        truncated,
    })
}

impl Guest for Fetch {
    fn describe() -> Vec<ToolDescriptor> {
        // Whatever a web page says may be written by anyone: mark the session.
        let labels = vec!["untrusted-content".to_string()];
        vec![ToolDescriptor {
            labels,
            ..descriptor(
                "get",
                "Fetches a URL with HTTP GET (following redirects) and returns the status and the body as text.",
                json!({
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "format": "uri", "maxLength": 8192},
                        "max_bytes": {"type": "integer", "minimum": 1, "maximum": 1048576},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}}
                    },
                    "required": ["url"],
                    "additionalProperties": false
                }),
                json!({
                    "type": "object",
                    "properties": {
                        "status": {"type": "integer"},
                        "url": {"type": "string"},
                        "body": {"type": "string"},
                        "truncated": {"type": "boolean"}
                    },
                    "required": ["status", "body", "truncated"]
                }),
                false,
            )
        }]
    }

    fn invoke(name: String, args: String) -> Result<String, ToolError> {
        match name.as_str() {
            "get" => {
                let a: GetArgs = parse_args(&args)?;
                output(&get(&a)?)
            }
            other => Err(warden_plugin_sdk::unknown_tool(other)),
        }
    }
}

warden_plugin_sdk::export!(Fetch);
