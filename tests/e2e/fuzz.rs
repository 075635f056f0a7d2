//! Fuzz targets for the parsers and request paths that take hostile input:
//! the config and manifest parsers, the capability intersection, the policy
//! input builder, the HTTP API and MCP's JSON-RPC over stdio.
//!
//! Each target mutates seed inputs (byte flips, splices, dictionary tokens,
//! NULs and control characters) with `arbtest` for a bounded time:
//! `WARDEN_FUZZ_MS` per target (3000 by default; CI sets more). A failure
//! prints the seed that reproduces it (`arbtest(...).seed(0x…)`). This is
//! random mutation, not coverage-guided fuzzing: cargo-fuzz needs a nightly
//! toolchain, which the project does not require.

use crate::fixtures;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::Unstructured;
use serde_json::{Value, json};
use tower::ServiceExt;
use warden::capabilities::{Access, Effective, Grants, Limits, Origin, Requested, SecretValue};
use warden::config::Config;
use warden::kernel::{CallRequest, policy_input};
use warden::policy::Stage;
use warden::session::{CallLabels, Usage};

use crate::harness::{Harness, StdioSession, Store, output, repo, token};

fn budget() -> Duration {
    let ms = std::env::var("WARDEN_FUZZ_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    Duration::from_millis(ms)
}

/// Tokens that mean something to TOML, JSON or HTTP, spliced into inputs.
const DICTIONARY: &[&str] = &[
    "\u{0}",
    "\n",
    "\r\n",
    "\"",
    "'",
    "\\",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    ":",
    "#",
    "..",
    "/",
    "%00",
    "%2e%2e",
    "\u{feff}",
    "\u{202e}",
    "é",
    "true",
    "null",
    "-1",
    "1e309",
    "18446744073709551616",
    "9223372036854775807",
    "[[",
    "]]",
    "\"\"\"",
    "'''",
    "*",
    "**",
    "http://",
    "127.0.0.1",
    "[::1]",
    "@",
    "?",
    "&",
    "rw",
    "ro",
    "\u{7f}",
];

/// `seed` with up to 8 random edits.
fn mutate(u: &mut Unstructured<'_>, seed: &str) -> arbitrary::Result<Vec<u8>> {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..u.int_in_range(0..=8)? {
        let at = u.int_in_range(0..=bytes.len())?;
        match u.int_in_range(0..=5)? {
            0 if at < bytes.len() => bytes[at] ^= 1 << u.int_in_range(0..=7)?,
            1 => {
                let token = u.choose(DICTIONARY)?;
                bytes.splice(at..at, token.bytes());
            }
            2 => {
                let end = u.int_in_range(at..=bytes.len().min(at + 64))?;
                bytes.drain(at..end);
            }
            3 => {
                let end = u.int_in_range(at..=bytes.len().min(at + 64))?;
                let copy = bytes[at..end].to_vec();
                let to = u.int_in_range(0..=bytes.len())?;
                bytes.splice(to..to, copy);
            }
            4 => {
                let noise: Vec<u8> = (0..u.int_in_range(1..=16)?)
                    .map(|_| u.arbitrary())
                    .collect::<arbitrary::Result<_>>()?;
                bytes.splice(at..at, noise);
            }
            _ => {}
        }
    }
    Ok(bytes)
}

fn mutated_text(u: &mut Unstructured<'_>, seeds: &[String]) -> arbitrary::Result<String> {
    let seed = u.choose(seeds)?;
    Ok(String::from_utf8_lossy(&mutate(u, seed)?).into_owned())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A config using every section, beside the quickstart's.
const FULL_CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
mcp_allowed_hosts = ["warden.example.com"]

[policy]
dir = "../../policies"
timeout_ms = 50
reload_interval_ms = 0

[audit]
url = "sqlite://audit.db"
spool = "spool.jsonl"
store_policy_input = true

[sessions]
label_ttl_s = 60
sticky_labels = ["untrusted-content", "pii"]
max_per_principal = 10

[limits]
default_memory_mb = 32
max_concurrent_per_plugin = 8

[cache]
enabled = false

[secrets.api]
value = "not-a-real-secret"

[[principals]]
id = "alice"
token = "alice-quickstart-token"
roles = ["analyst"]
tenant = "acme"
attributes = { department = "finance", clearance = 2 }

[plugins.text]
manifest = "../../plugins/text/plugin.toml"
grants = { memory_mb = 16, max_concurrent = 4 }

[plugins.files]
manifest = "../../plugins/files/plugin.toml"
grants = { directories = [{ host = "data", guest = "/data", access = "ro" }] }

[plugins.fetch]
manifest = "../../plugins/fetch/plugin.toml"
grants = { outbound_http = ["https://*.example.com"], private_ranges = ["10.0.0.0/8"], secrets = [{ secret = "api", origin = "https://api.example.com", header = "authorization", format = "Bearer {secret}" }] }

[upstreams.notes]
url = "http://127.0.0.1:1/mcp"
labels = ["untrusted-content"]
"#;

#[test]
fn fuzz_config_parser() {
    let path = repo().join("examples/quickstart/warden.toml");
    let seeds = vec![read(&path), FULL_CONFIG.to_string()];
    arbtest::arbtest(|u| {
        let text = mutated_text(u, &seeds)?;
        if let Err(e) = Config::parse(&text, &path) {
            let message = e.to_string();
            assert!(
                message.starts_with(&path.display().to_string()),
                "a config error must name the file: {message}"
            );
        }
        Ok(())
    })
    .budget(budget())
    .run();
}

#[test]
fn fuzz_manifest_parser() {
    let seeds: Vec<String> = ["text", "files", "fetch", "hostile", "py-text", "js-text"]
        .iter()
        .map(|p| read(&repo().join("plugins").join(p).join("plugin.toml")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.toml");
    arbtest::arbtest(|u| {
        let text = mutated_text(u, &seeds)?;
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = warden::manifest::Manifest::load(&path) {
            let message = e.to_string();
            assert!(
                message.starts_with(&path.display().to_string()),
                "a manifest error must name the file: {message}"
            );
        }
        Ok(())
    })
    .budget(budget())
    .run();
}

const REQUESTED_SEED: &str = r#"
directories = [{ guest = "/data", access = "rw" }, { guest = "/cache", access = "ro" }]
outbound_http = ["https://api.example.com", "http://127.0.0.1:8080"]
env = ["HOME", "TOKEN"]
memory_mb = 128
time_limit_ms = 90000
"#;

const GRANTS_SEED: &str = r#"
directories = [{ host = "/tmp/a", guest = "/data", access = "ro" }, { host = "/tmp/b", guest = "/other", access = "rw" }]
outbound_http = ["https://*.example.com", "http://127.0.0.1:8080"]
env = { HOME = "/home/x", OTHER = "y" }
memory_mb = 4096
private_ranges = ["127.0.0.1/32"]
secrets = [{ secret = "api", origin = "https://api.example.com", header = "authorization" }]
max_concurrent = 100000
"#;

/// Whatever the request and the grant say, the effective capabilities are
/// within both and within the host's limits.
#[test]
fn fuzz_capability_intersection() {
    let requested_seeds = vec![REQUESTED_SEED.to_string(), "outbound_http = [\"*\"]".into()];
    let grant_seeds = vec![GRANTS_SEED.to_string(), String::new()];
    let limits = Limits::default();
    let secrets = [("api".to_string(), SecretValue::new("v".into()))]
        .into_iter()
        .collect();
    arbtest::arbtest(|u| {
        let (Ok(requested), Ok(granted)) = (
            toml::from_str::<Requested>(&mutated_text(u, &requested_seeds)?),
            toml::from_str::<Grants>(&mutated_text(u, &grant_seeds)?),
        ) else {
            return Ok(());
        };
        let Ok(effective) = Effective::intersect(&requested, &granted, &limits, &secrets) else {
            return Ok(());
        };
        for dir in &effective.directories.granted {
            let grant = granted
                .directories
                .directories
                .iter()
                .find(|g| g.guest == dir.guest);
            let request = requested
                .directories
                .directories
                .iter()
                .find(|r| r.guest == dir.guest);
            let (Some(grant), Some(request)) = (grant, request) else {
                panic!("directory {} was not both requested and granted", dir.guest);
            };
            assert_eq!(dir.host, grant.host);
            assert!(dir.access <= grant.access && dir.access <= request.access);
            assert!(dir.access == Access::Ro || grant.access == Access::Rw);
        }
        for (name, value) in &effective.env {
            assert!(requested.env.env.contains(name));
            assert_eq!(granted.env.env.get(name), Some(value));
        }
        let granted_origins: Vec<Origin> = granted
            .egress
            .outbound_http
            .iter()
            .filter_map(|o| Origin::parse(o).ok())
            .collect();
        let requested_origins: Vec<Origin> = requested
            .egress
            .outbound_http
            .iter()
            .filter_map(|o| Origin::parse(o).ok())
            .collect();
        for origin in &effective.egress.origins {
            assert!(
                granted_origins.contains(origin) || requested_origins.contains(origin),
                "{origin:?} was neither granted nor requested"
            );
        }
        if granted.egress.outbound_http.is_empty() {
            assert!(effective.egress.origins.is_empty());
        }
        assert!(
            effective
                .memory_bytes
                .is_some_and(|bytes| bytes <= limits.max_memory_mb << 20)
        );
        assert!(effective.time_limit <= Duration::from_millis(limits.max_time_limit_ms));
        assert!(effective.max_concurrent >= 1);
        assert!(effective.max_concurrent <= limits.max_concurrent_per_plugin);
        Ok(())
    })
    .budget(budget())
    .run();
}

/// A JSON value of bounded depth with hostile strings.
fn arbitrary_json(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let kind = u.int_in_range(0..=if depth == 0 { 3 } else { 5 })?;
    Ok(match kind {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.int_in_range(-(1i64 << 31)..=(1i64 << 31))?),
        3 => Value::String(arbitrary_string(u)?),
        4 => Value::Array(
            (0..u.int_in_range(0..=4)?)
                .map(|_| arbitrary_json(u, depth - 1))
                .collect::<arbitrary::Result<_>>()?,
        ),
        _ => Value::Object(
            (0..u.int_in_range(0..=4)?)
                .map(|_| Ok((arbitrary_string(u)?, arbitrary_json(u, depth - 1)?)))
                .collect::<arbitrary::Result<_>>()?,
        ),
    })
}

fn arbitrary_string(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut text: String = u.arbitrary()?;
    if u.ratio(1, 4)? {
        text.push_str(u.choose(DICTIONARY)?);
    }
    Ok(text)
}

/// Any arguments, labels and session build a policy input the default
/// bundle decides without failing, and the arguments reach policy intact.
#[tokio::test]
async fn fuzz_policy_input_builder() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let tool = host
        .kernel
        .registry()
        .tool("text.transform")
        .unwrap()
        .clone();
    let policy = host.kernel.policy();
    let principals: Vec<_> = ["alice", "bob", "root", "nobody"]
        .iter()
        .map(|p| host.kernel.principals().by_id(p).unwrap())
        .collect();
    arbtest::arbtest(|u| {
        let args = arbitrary_json(u, 4)?;
        let request = CallRequest {
            principal: u.choose(&principals)?.clone(),
            tool: tool.name.clone(),
            args: args.clone(),
            session: u.arbitrary()?,
            contract: None,
            trace: None,
        };
        let labels = (0..u.int_in_range(0..=3)?)
            .map(|_| arbitrary_string(u))
            .collect::<arbitrary::Result<Vec<_>>>()?;
        let context = CallLabels {
            session: labels.clone(),
            principal: labels,
            usage: Usage {
                tenant_calls: u.arbitrary()?,
                principal_calls: u.arbitrary()?,
            },
        };
        let input = policy_input(&request, &tool, context, &[], &[]);
        assert_eq!(input.to_json()["args"], args);
        let decision = policy.decide(Stage::Call, &input);
        assert!(decision.is_ok(), "the default bundle failed: {decision:?}");
        Ok(())
    })
    .budget(budget())
    .run();
}

const CODES: &[&str] = &[
    "invalid-request",
    "unauthenticated",
    "forbidden",
    "unknown-tool",
    "unknown-session",
    "invalid-args",
    "policy-denied",
    "pending-approval",
    "tool-invalid-input",
    "tool-failed",
    "audit-unavailable",
];

/// Mutated requests to every route: each is answered, `/v1` errors in the
/// documented shape with a known code, and the API still serves afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_http_requests() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    let paths: Vec<String> = [
        "/v1/tools/text.transform/invoke",
        "/v1/tools/text.stats/invoke",
        "/v1/tools",
        "/v1/sessions",
        "/v1/audit?principal=alice&limit=5",
        "/healthz",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    let bodies: Vec<String> = [
        r#"{"args": {"text": "hello", "op": "upper"}}"#,
        r#"{"args": {"text": "hello"}, "session": "s_00000000000000000000000000000000"}"#,
        r#"{"args": {"text": "x", "op": "reverse", "extra": [1, {"a": null}]}}"#,
        "",
    ]
    .iter()
    .map(|b| b.to_string())
    .collect();
    let tokens = [
        token("alice"),
        token("root"),
        token("audra"),
        "garbage".into(),
    ];
    let runtime = tokio::runtime::Handle::current();
    let exchanges = tokio::task::block_in_place(|| {
        let mut exchanges = 0u32;
        arbtest::arbtest(|u| {
            let method = *u.choose(&["GET", "POST", "PUT", "DELETE", "OPTIONS"])?;
            let path = mutated_text(u, &paths)?;
            let mut builder = axum::http::Request::builder().method(method).uri(&path);
            if u.ratio(4, 5)? {
                builder = builder.header("authorization", format!("Bearer {}", u.choose(&tokens)?));
            }
            if u.arbitrary()? {
                let content_type = *u.choose(&["application/json", "text/plain", "x/\u{0}"])?;
                builder = builder.header("content-type", content_type);
            }
            let body = mutated_text(u, &bodies)?;
            let Ok(request) = builder.body(axum::body::Body::from(body)) else {
                return Ok(()); // not an HTTP request at all
            };
            let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
            exchanges += 1;
            let status = response.status();
            let bytes = runtime
                .block_on(axum::body::to_bytes(response.into_body(), 16 << 20))
                .unwrap();
            if path.starts_with("/v1/") && (status.is_client_error() || status.is_server_error()) {
                if status == axum::http::StatusCode::METHOD_NOT_ALLOWED
                    || status == axum::http::StatusCode::NOT_FOUND && bytes.is_empty()
                {
                    return Ok(()); // the router's own answer: no such route
                }
                let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!("{method} {path}: {status} with a body that is not JSON ({e})")
                });
                let code = body["error"]["code"].as_str().unwrap_or_default();
                assert!(CODES.contains(&code), "{method} {path}: {status} {body}");
            }
            Ok(())
        })
        .budget(budget())
        .run();
        exchanges
    });
    assert!(exchanges > 0);
    let request = axum::http::Request::post("/v1/tools/text.transform/invoke")
        .header("authorization", format!("Bearer {}", token("alice")))
        .body(axum::body::Body::from(
            r#"{"args": {"text": "ok", "op": "upper"}}"#,
        ))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Mutated JSON-RPC lines to `warden mcp`: after each, a ping is still
/// answered, and a real call still works at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_json_rpc_over_stdio() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let mut mcp = StdioSession::start(&host).await;
    let seeds: Vec<String> = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "text.transform", "arguments": {"text": "a", "op": "upper"}}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "text.transform", "arguments": {"text": "a"},
            "_meta": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}),
        json!({"jsonrpc": "2.0", "id": "x", "method": "ping"}),
        json!([{"jsonrpc": "2.0", "id": 4, "method": "ping"}]),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    let runtime = tokio::runtime::Handle::current();
    // Probe ids no seed uses, so a fuzzed request can never answer for one.
    let mut ping = 1_000_000u64;
    tokio::task::block_in_place(|| {
        arbtest::arbtest(|u| {
            let line = mutated_text(u, &seeds)?.replace(['\n', '\r'], " ");
            ping += 1;
            let probe = json!({"jsonrpc": "2.0", "id": ping, "method": "ping"}).to_string();
            runtime.block_on(async {
                mcp.send_line(&line).await;
                mcp.send_line(&probe).await;
                loop {
                    let message = mcp.response().await;
                    if message["id"] == json!(ping) {
                        assert_eq!(message["result"], json!({}), "after {line:?}: {message}");
                        break;
                    }
                }
            });
            Ok(())
        })
        .budget(budget())
        .run();
    });
    // Answers to fuzzed calls may still arrive (a call can finish after the
    // ping that followed it): read until the final call's own answer.
    let mut last = mcp.call_transform(987_654_321).await;
    while last["id"] != json!(987_654_321) {
        last = mcp.response().await;
    }
    assert_eq!(
        last["result"]["structuredContent"],
        json!({"text": "OK"}),
        "{last}"
    );
    let _ = mcp.child.start_kill();
    // The host the harness started still serves too.
    output(&host.transform("alice", "x", "upper").await);
}
