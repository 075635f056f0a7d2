//! Gateway mode: a third-party MCP server (`notes_server.py`, written with the
//! official Python SDK) behind Warden, over stdio and over streamable HTTP.
//! Its tools are decided by Rego with their arguments and audited with the
//! upstream's identity.

use crate::fixtures;
use std::path::Path;

use serde_json::{Value, json};
use warden::ErrorCode;

use crate::harness::{Harness, Host, Store, error, output, repo, toml_path};
use crate::mcp::{client_scenario, python};

/// Notes are open to everyone except bob; writing under `system/` is denied
/// whoever asks: a rule on an argument value.
const POLICY: &str = r#"
package warden.authz

default allow := false

allow if startswith(input.target.name, "notes.")
allow if input.target.name == "text.transform"

deny contains sprintf("notes under system/ are read-only (asked to write %q)", [input.args.name]) if {
	input.target.name == "notes.write_note"
	startswith(input.args.name, "system/")
}

deny contains "bob may not use upstream servers" if {
	input.principal.id == "bob"
	input.target.upstream != null
}

decision := {"allow": true, "reasons": []} if {
	allow
	count(deny) == 0
}

decision := {"allow": false, "reasons": sort(deny)} if count(deny) > 0

decision := {"allow": false, "reasons": ["not allowed"]} if {
	not allow
	count(deny) == 0
}
"#;

/// The operator vouches that `read_note` only reads: an upstream's
/// `readOnlyHint` alone does not make a tool free of side effects.
const READ_NOTE_PIN: &str = "[upstreams.notes.pins.read_note]\nside_effects = false\n";

/// `[upstreams.notes]` running the Python server over stdio; each call it
/// receives is appended to `calls_log`.
fn stdio_upstream(calls_log: &Path, extra: &str) -> String {
    format!(
        "[upstreams.notes]\ncommand = [{}, {}, \"stdio\"]\nenv = {{ NOTES_CALL_LOG = {} }}\n{extra}\n{READ_NOTE_PIN}",
        toml_path(&python()),
        toml_path(&repo().join("tests/e2e/notes_server.py")),
        toml_path(calls_log),
    )
}

async fn stdio_host(store: Store, extra: &str) -> (Host, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let host = Harness::new(store)
        .plugin(fixtures::TEXT, "{}")
        .policy(POLICY)
        .audit_settings("store_policy_input = true")
        .extra_config(&stdio_upstream(&logs.path().join("calls.log"), extra))
        .start()
        .await;
    (host, logs)
}

fn calls_received(logs: &tempfile::TempDir) -> String {
    std::fs::read_to_string(logs.path().join("calls.log")).unwrap_or_default()
}

/// What every transport must do the same way.
async fn assert_gateway_governs(host: &Host, logs: &tempfile::TempDir, transport: &str) {
    let tools: Vec<_> = host
        .kernel
        .registry()
        .tools()
        .map(|t| (t.name.clone(), t.side_effects))
        .collect();
    for expected in [
        ("notes.read_note".to_string(), false),
        ("notes.write_note".to_string(), true),
        ("text.transform".to_string(), false),
    ] {
        assert!(tools.contains(&expected), "{expected:?} in {tools:?}");
    }

    // Allowed: the upstream's result comes back as MCP has it.
    let read = host
        .call("alice", "notes.read_note", json!({"name": "welcome"}))
        .await;
    let out = output(&read);
    assert_eq!(out["content"][0]["text"], "hello from the notes server");
    assert_eq!(
        out["structuredContent"],
        json!({"result": "hello from the notes server"})
    );

    // Denied on an argument value, before the upstream sees anything.
    let denied = host
        .call(
            "alice",
            "notes.write_note",
            json!({"name": "system/motd", "text": "pwned"}),
        )
        .await;
    let e = error(&denied, ErrorCode::PolicyDenied);
    assert_eq!(
        e.reasons,
        vec![r#"notes under system/ are read-only (asked to write "system/motd")"#.to_string()]
    );
    assert!(!calls_received(logs).contains("system/motd"));

    // The same tool with another argument value is allowed and runs.
    let written = host
        .call(
            "alice",
            "notes.write_note",
            json!({"name": "todo", "text": "buy milk"}),
        )
        .await;
    assert_eq!(output(&written)["content"][0]["text"], "saved todo");
    assert!(calls_received(logs).contains("write_note [('name', 'todo')"));

    // bob is denied on the upstream's identity.
    let bob = host
        .call("bob", "notes.read_note", json!({"name": "welcome"}))
        .await;
    assert_eq!(
        error(&bob, ErrorCode::PolicyDenied).reasons,
        vec!["bob may not use upstream servers".to_string()]
    );

    // The upstream's input schema is enforced by Warden.
    let invalid = host
        .call("alice", "notes.read_note", json!({"name": 5}))
        .await;
    error(&invalid, ErrorCode::InvalidArgs);

    // A tool error from the upstream is a failed call, with its message.
    let missing = host
        .call("alice", "notes.read_note", json!({"name": "nope"}))
        .await;
    let e = error(&missing, ErrorCode::ToolFailed);
    assert!(e.message.contains("no note named 'nope'"), "{}", e.message);

    // Every call is audited with the upstream's identity.
    let record = host.record(&read.call_id).await.record;
    assert_eq!(record.plugin.as_deref(), Some("notes"));
    assert_eq!(record.plugin_sha256, None);
    let upstream: Value = serde_json::from_str(record.upstream.as_deref().unwrap()).unwrap();
    assert_eq!(upstream["transport"], transport);
    assert_eq!(upstream["server_name"], "notes-server");
    assert_eq!(upstream["server_version"], "1.4.2");
    assert!(!upstream["protocol_version"].as_str().unwrap().is_empty());
    let input: Value = serde_json::from_str(record.policy_input.as_deref().unwrap()).unwrap();
    assert_eq!(input["target"]["upstream"], upstream);
    assert_eq!(input["args"], json!({"name": "welcome"}));
    // An upstream runs outside the sandbox: Warden grants it nothing and
    // bounds its time and concurrency, not its memory.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/schemas/policy-input.v1.json")).unwrap(),
    )
    .unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&input)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{input:#}");
    let capabilities = &input["capabilities"];
    assert_eq!(capabilities["memory_mb"], Value::Null);
    for granted in [
        "directories",
        "outbound_http",
        "private_ranges",
        "secrets",
        "env",
    ] {
        assert_eq!(capabilities[granted], json!([]), "{granted}");
    }
    assert_eq!(capabilities["kv"], Value::Null);
    assert!(capabilities["time_limit_ms"].as_u64().unwrap() > 0);
    assert!(capabilities["max_concurrent"].as_u64().unwrap() > 0);

    let denied_record = host.record(&denied.call_id).await.record;
    assert_eq!(denied_record.decision, "deny");
    assert_eq!(denied_record.outcome, "policy-denied");
    assert!(denied_record.upstream.is_some());

    // The side-effecting call left an intent record before it ran.
    let records = host.records().await;
    let written_records: Vec<_> = records
        .iter()
        .filter(|r| r.record.call_id == written.call_id)
        .collect();
    assert_eq!(written_records.len(), 2);
    assert!(written_records[0].record.intent);
    assert_eq!(written_records[1].record.outcome, "ok");

    // The chain holds.
    assert!(host.cli(&["audit", "verify"]).status.success());
}

#[tokio::test]
async fn a_stdio_mcp_server_behind_warden_is_decided_on_arguments_and_audited() {
    let (host, logs) = stdio_host(Store::Sqlite, "").await;
    assert_gateway_governs(&host, &logs, "stdio").await;
}

#[tokio::test]
async fn an_http_mcp_server_behind_warden_is_decided_on_arguments_and_audited_in_postgres() {
    let logs = tempfile::tempdir().unwrap();
    let upstream = PythonHttpServer::start(&logs.path().join("calls.log")).await;
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .policy(POLICY)
        .audit_settings("store_policy_input = true")
        .extra_config(&format!(
            "[upstreams.notes]\nurl = \"{}\"\n{READ_NOTE_PIN}",
            upstream.url
        ))
        .start()
        .await;
    assert_gateway_governs(&host, &logs, "http").await;
    let record = host.records().await.pop().unwrap().record;
    assert!(record.upstream.unwrap().contains(&upstream.url));
}

#[tokio::test]
async fn gateway_tools_reach_mcp_clients_through_warden() {
    let (host, logs) = stdio_host(Store::Sqlite, "").await;
    let report = client_scenario(
        "gateway",
        &[
            "stdio",
            env!("CARGO_BIN_EXE_warden"),
            host.config_path.to_str().unwrap(),
            "alice",
        ],
    );
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("notes.read_note"))
    );
    assert_eq!(report["read"]["is_error"], false);
    assert_eq!(
        report["read"]["text"],
        json!(["hello from the notes server"])
    );
    assert_eq!(
        report["read"]["structured"],
        json!({"result": "hello from the notes server"})
    );
    assert_eq!(report["read_schema"]["result"]["type"], "string");
    assert_eq!(report["denied"]["is_error"], true);
    assert_eq!(report["denied"]["structured"]["code"], "policy-denied");
    assert!(!calls_received(&logs).contains("system/motd"));
    // The `warden mcp` process wrote to the same trail.
    let records = host.records().await;
    assert!(
        records
            .iter()
            .any(|r| r.record.tool == "notes.write_note" && r.record.outcome == "policy-denied")
    );
}

#[tokio::test]
async fn an_upstream_that_dies_or_hangs_fails_the_call_and_the_next_call_reconnects() {
    // The limit covers a reconnect, which starts a new Python process: keep
    // headroom for a loaded machine (1.5 s was not always enough in CI).
    let (host, logs) = stdio_host(Store::Sqlite, "time_limit_ms = 5000").await;

    let crashed = host.call("alice", "notes.crash", json!({})).await;
    let e = error(&crashed, ErrorCode::UpstreamUnavailable);
    assert!(e.message.contains("upstream `notes`"), "{}", e.message);
    assert_eq!(
        host.record(&crashed.call_id).await.record.outcome,
        "upstream-unavailable"
    );

    let again = host
        .call("alice", "notes.read_note", json!({"name": "welcome"}))
        .await;
    assert_eq!(
        output(&again)["content"][0]["text"],
        "hello from the notes server"
    );

    let slow = host
        .call("alice", "notes.sleep", json!({"seconds": 30}))
        .await;
    error(&slow, ErrorCode::Timeout);
    let after = host
        .call("alice", "notes.read_note", json!({"name": "welcome"}))
        .await;
    output(&after);
    assert!(calls_received(&logs).contains("crash"));
}

#[tokio::test]
async fn upstreams_that_cannot_serve_are_refused_at_start_with_their_name() {
    let refused = |extra: String| async move {
        match Harness::new(Store::Sqlite)
            .policy(POLICY)
            .extra_config(&extra)
            .try_start()
            .await
        {
            Ok(_) => panic!("started with {extra}"),
            Err((e, _)) => e.to_string(),
        }
    };
    let missing =
        refused("[upstreams.ghost]\ncommand = [\"/nonexistent/mcp-server\"]\n".to_string()).await;
    assert!(
        missing.starts_with("upstream `ghost`: cannot start `/nonexistent/mcp-server`"),
        "{missing}"
    );

    let logs = tempfile::tempdir().unwrap();
    let unknown_tool = refused(stdio_upstream(
        &logs.path().join("calls.log"),
        "tools = [\"read_note\", \"format_disk\"]",
    ))
    .await;
    assert!(
        unknown_tool.contains("`tools` lists `format_disk`, which the server does not offer"),
        "{unknown_tool}"
    );

    let not_mcp = refused(
        "[upstreams.silent]\ncommand = [\"sh\", \"-c\", \"echo hello; exit 0\"]\n".to_string(),
    )
    .await;
    assert!(
        not_mcp.starts_with("upstream `silent`: MCP handshake failed"),
        "{not_mcp}"
    );
}

#[tokio::test]
async fn only_the_listed_upstream_tools_are_served() {
    let (host, _logs) = stdio_host(Store::Sqlite, "tools = [\"read_note\"]").await;
    let names: Vec<_> = host
        .kernel
        .registry()
        .tools()
        .filter(|t| t.provider() == "notes")
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names, vec!["notes.read_note".to_string()]);
    let hidden = host
        .call(
            "alice",
            "notes.write_note",
            json!({"name": "a", "text": "b"}),
        )
        .await;
    error(&hidden, ErrorCode::UnknownTool);
}

/// The notes server over streamable HTTP on a free port.
struct PythonHttpServer {
    child: std::process::Child,
    url: String,
}

impl PythonHttpServer {
    async fn start(calls_log: &Path) -> PythonHttpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(python())
            .arg(repo().join("tests/e2e/notes_server.py"))
            .args(["http", &port.to_string()])
            .env("NOTES_CALL_LOG", calls_log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = PythonHttpServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the Python MCP server did not come up on port {port}");
    }
}

impl Drop for PythonHttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A policy that allows everything and redacts `POINTER` of every call.
const REDACTING_POLICY: &str = r#"
package warden.authz

decision := {"allow": true, "reasons": [], "obligations": {"redact": ["POINTER"]}}
"#;

#[tokio::test]
async fn a_redacted_gateway_output_reaches_mcp_clients_as_what_is_left() {
    // (redacted pointer, expected content text, expected structured content)
    let cases = [
        ("/output", json!(["[redacted]"]), Value::Null),
        (
            "/output/content",
            json!(["[redacted]"]),
            json!({"result": "hello from the notes server"}),
        ),
        (
            "/output/structuredContent",
            json!(["hello from the notes server"]),
            Value::Null,
        ),
        (
            "/output/content/0/text",
            json!(["[redacted]"]),
            json!({"result": "hello from the notes server"}),
        ),
    ];
    for (pointer, text, structured) in cases {
        let logs = tempfile::tempdir().unwrap();
        let host = Harness::new(Store::Sqlite)
            .policy(&REDACTING_POLICY.replace("POINTER", pointer))
            .extra_config(&stdio_upstream(&logs.path().join("calls.log"), ""))
            .start()
            .await;
        let mut mcp = crate::harness::StdioSession::start(&host).await;
        mcp.send_line(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "notes.read_note", "arguments": {"name": "welcome"}}})
            .to_string(),
        )
        .await;
        let response = mcp.response().await;
        let result = &response["result"];
        assert_eq!(result["isError"], false, "{pointer}: {response}");
        let texts: Vec<Value> = result["content"]
            .as_array()
            .unwrap_or_else(|| panic!("{pointer}: no content in {response}"))
            .iter()
            .map(|block| block["text"].clone())
            .collect();
        assert_eq!(Value::from(texts), text, "{pointer}: {response}");
        let shown = result.get("structuredContent").cloned();
        assert_eq!(shown.unwrap_or(Value::Null), structured, "{pointer}");
        // The same host still serves the next call on that connection.
        mcp.send_line(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
            .await;
        assert_eq!(mcp.response().await["id"], 2, "{pointer}");
        let _ = mcp.child.start_kill();
        let record = host.records().await.pop().unwrap().record;
        assert_eq!(record.outcome, "ok", "{pointer}");
    }
}

/// The caller's W3C `traceparent` reaches the upstream server in `_meta`,
/// from an MCP client's `_meta`, the HTTP API's `traceparent` header and an
/// in-process request; a malformed one (here with a header smuggled after a
/// line break) is dropped, never passed on.
#[tokio::test]
async fn the_callers_trace_context_reaches_upstreams_only_when_well_formed() {
    const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
    let (host, _logs) = stdio_host(Store::Sqlite, "").await;
    let text = |response: &Value| response.to_string();

    // In process.
    let principal = host.kernel.principals().by_id("alice").unwrap();
    let request = |trace| warden::CallRequest {
        principal: principal.clone(),
        tool: "notes.trace".into(),
        args: json!({}),
        session: None,
        contract: None,
        trace,
    };
    let traced = host
        .kernel
        .call(request(warden::trace::TraceParent::parse(TRACEPARENT)))
        .await;
    assert!(text(output(&traced)).contains(TRACEPARENT), "{traced:?}");
    let untraced = host.kernel.call(request(None)).await;
    assert!(!text(output(&untraced)).contains("00-"), "{untraced:?}");

    // MCP over stdio, with the Python SDK.
    let report = client_scenario(
        "trace",
        &[
            "stdio",
            env!("CARGO_BIN_EXE_warden"),
            host.config_path.to_str().unwrap(),
            "alice",
        ],
    );
    assert!(text(&report["good"]).contains(TRACEPARENT), "{report}");
    assert!(
        !text(&report["bad"]).contains("0af7651916cd43dd"),
        "{report}"
    );

    // The HTTP API's header.
    let server = crate::harness::Server::start(&host).await;
    let invoke = |traceparent: &'static str| {
        let addr = server.addr.clone();
        async move {
            let header = format!("traceparent: {traceparent}\r\n");
            let path = "/v1/tools/notes.trace/invoke";
            crate::harness::post_with_headers(&addr, path, "alice", &header, r#"{"args": {}}"#)
                .await
        }
    };
    let traced = invoke(TRACEPARENT).await;
    assert!(traced.starts_with("HTTP/1.1 200"), "{traced}");
    assert!(traced.contains(TRACEPARENT), "{traced}");
    let malformed = invoke("00-0AF7651916CD43DD8448EB211C80319C-00f067aa0ba902b7-01").await;
    assert!(malformed.starts_with("HTTP/1.1 200"), "{malformed}");
    assert!(
        !malformed.to_lowercase().contains("0af7651916cd43dd"),
        "{malformed}"
    );
}

/// A fake OpenTelemetry collector: OTLP/HTTP with protobuf on 127.0.0.1,
/// keeping every span it receives.
struct Collector {
    addr: std::net::SocketAddr,
    spans: std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
    services: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Collector {
    async fn start() -> Collector {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let services = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (kept, named) = (spans.clone(), services.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (kept, named) = (kept.clone(), named.clone());
                async move {
                    let request = ExportTraceServiceRequest::decode(body).unwrap();
                    for resource in request.resource_spans {
                        for attribute in resource.resource.into_iter().flat_map(|r| r.attributes) {
                            if attribute.key == "service.name" {
                                named.lock().unwrap().push(format!("{:?}", attribute.value));
                            }
                        }
                        for scope in resource.scope_spans {
                            kept.lock().unwrap().extend(scope.spans);
                        }
                    }
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Collector {
            addr,
            spans,
            services,
        }
    }
}

/// With an OTLP endpoint in the environment, a call is a `call` span under
/// the caller's `traceparent`, each stage a span under it, and the upstream
/// server continues the trace from the `run` stage: its `traceparent` names
/// Warden's span, not the caller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_traces_on_a_call_is_a_span_under_the_callers_and_upstreams_continue_it() {
    const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
    const CALLER_SPAN: &str = "00f067aa0ba902b7";
    let collector = Collector::start().await;
    let (host, _logs) = stdio_host(Store::Sqlite, "").await;
    let endpoint = format!("http://{}", collector.addr);
    let mut server = crate::harness::Server::start_with_env(
        &host,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    )
    .await;
    let header = format!("traceparent: 00-{TRACE_ID}-{CALLER_SPAN}-01\r\n");
    let path = "/v1/tools/notes.trace/invoke";
    let response =
        crate::harness::post_with_headers(&server.addr, path, "alice", &header, r#"{"args": {}}"#)
            .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let call_id = body["call_id"].as_str().unwrap().to_string();
    // What the upstream received: the caller's trace, Warden's span.
    let passed_on = format!("00-{TRACE_ID}-");
    let at = response
        .find(&passed_on)
        .expect("the upstream got the trace");
    let upstream_parent = &response[at + passed_on.len()..at + passed_on.len() + 16];
    assert_ne!(upstream_parent, CALLER_SPAN);

    // SIGTERM flushes what the exporter still holds.
    std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    for _ in 0..300 {
        if server.child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        server
            .child
            .try_wait()
            .unwrap()
            .is_some_and(|s| s.success())
    );

    let spans = collector.spans.lock().unwrap().clone();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
    let call = spans
        .iter()
        .find(|s| s.name == "call")
        .unwrap_or_else(|| panic!("no call span in {names:?}"));
    assert_eq!(hex(&call.trace_id), TRACE_ID);
    assert_eq!(hex(&call.parent_span_id), CALLER_SPAN);
    let attribute = |key: &str| {
        call.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone())
            .map(|v| format!("{v:?}"))
            .unwrap_or_default()
    };
    assert!(
        attribute("call_id").contains(&call_id),
        "{:?}",
        call.attributes
    );
    for stage in ["context", "decide", "run", "record"] {
        let span = spans
            .iter()
            .find(|s| s.name == stage)
            .unwrap_or_else(|| panic!("no {stage} span in {names:?}"));
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{stage}");
        assert_eq!(
            span.parent_span_id, call.span_id,
            "{stage} is under the call"
        );
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    }
    let run = spans.iter().find(|s| s.name == "run").unwrap();
    assert_eq!(
        hex(&run.span_id),
        upstream_parent,
        "the upstream continues from run"
    );
    let services = collector.services.lock().unwrap().clone();
    assert!(
        services.iter().all(|s| s.contains("\"warden\"")),
        "{services:?}"
    );
}
