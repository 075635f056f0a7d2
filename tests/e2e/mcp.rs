//! MCP with a real, independently written client: the official Python SDK,
//! installed into a virtualenv by the test itself, over stdio and over
//! streamable HTTP.

use crate::fixtures;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::harness::{Harness, Host, Server, StdioSession, Store, http, repo, token};

/// The Python packages the tests use: the MCP SDK, the OpenAI SDK for the
/// gateway, and a Kubernetes schema validator for deploy/kubernetes.
const PYTHON_SDKS: &[&str] = &[
    "mcp==2.3.0",
    "openai==3.57.0",
    "kubernetes-validate==1.37.0",
];

/// A virtualenv with the MCP and OpenAI Python SDKs (and the Kubernetes
/// schema validator, for docs/deploy.md's manifests), made once (under the cargo target
/// directory, so it survives between runs).
pub(crate) fn python() -> PathBuf {
    static VENV: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut venv = VENV.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(python) = venv.as_ref() {
        return python.clone();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("mcp-python");
    let python = dir.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import mcp, httpx2, openai, kubernetes_validate"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status();
        assert!(
            created.is_ok_and(|s| s.success()),
            "cannot create a Python virtualenv at {}: install python3 with the venv module",
            dir.display()
        );
        let installed = Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(PYTHON_SDKS)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "cannot install {PYTHON_SDKS:?} from PyPI into {}",
            dir.display()
        );
    }
    *venv = Some(python.clone());
    python
}

/// Runs the Python MCP client's governed-tools scenario and returns its report.
fn client(args: &[&str]) -> Value {
    client_scenario("governed", args)
}

/// Runs one scenario of the Python MCP client and returns its report.
pub(crate) fn client_scenario(scenario: &str, args: &[&str]) -> Value {
    let python = python();
    let out = Command::new(python)
        .arg(repo().join("tests/e2e/mcp_client.py"))
        .arg(scenario)
        .args(args)
        .output()
        .expect("run the Python MCP client");
    assert!(
        out.status.success(),
        "MCP client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client report")
}

async fn mcp_host() -> Host {
    Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .plugin(fixtures::FETCH, "{}")
        .start()
        .await
}

/// What every transport must show the same way.
async fn assert_governed(host: &Host, report: &Value) {
    assert_eq!(report["server"], "warden");
    // alice is an analyst: policy can never allow her fetch.get, so it is hidden.
    assert_eq!(
        report["tools"],
        json!(["text.json_pointer", "text.stats", "text.transform"])
    );
    assert_eq!(
        report["schemas"]["text.transform"]["required"],
        json!(["text", "op"])
    );
    assert_eq!(report["ok"]["is_error"], false);
    assert_eq!(report["ok"]["structured"], json!({"text": "HELLO"}));

    let denied = &report["denied"];
    assert_eq!(denied["is_error"], true);
    assert_eq!(denied["structured"]["code"], "policy-denied");
    assert_eq!(
        denied["structured"]["reasons"],
        json!([r#"no role of principal "alice" grants tool "fetch.get""#])
    );
    assert_eq!(report["invalid"]["structured"]["code"], "invalid-args");
    assert!(
        report["invalid"]["structured"]["message"]
            .as_str()
            .unwrap()
            .starts_with("arguments for `text.transform` at /")
    );
    assert_eq!(report["unknown"]["structured"]["code"], "unknown-tool");

    // Every call went through the kernel and is in the trail.
    let records = host.records().await;
    let outcomes: Vec<&str> = records.iter().map(|r| r.record.outcome.as_str()).collect();
    for expected in ["ok", "policy-denied", "invalid-args", "unknown-tool"] {
        assert!(outcomes.contains(&expected), "{outcomes:?}");
    }
    let denied_id = denied["structured"]["call_id"].as_str().unwrap();
    assert!(records.iter().any(|r| r.record.call_id == denied_id));
}

#[tokio::test]
async fn mcp_over_stdio_with_the_python_sdk() {
    let host = mcp_host().await;
    let report = client(&[
        "stdio",
        env!("CARGO_BIN_EXE_warden"),
        host.config_path.to_str().unwrap(),
        "alice",
    ]);
    assert_governed(&host, &report).await;
}

#[tokio::test]
async fn mcp_over_streamable_http_with_the_python_sdk() {
    let host = mcp_host().await;
    let server = Server::start(&host).await;
    let url = format!("http://{}/mcp", server.addr);
    let report = client(&["http", &url, &token("alice")]);
    assert_governed(&host, &report).await;

    // No token, a wrong token, a foreign browser origin: refused before MCP.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
    .to_string();
    let (status, body) = http(&server.addr, "POST", "/mcp", None, &init)
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = http(&server.addr, "POST", "/mcp", Some("wrong-token"), &init)
        .await
        .unwrap();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn mcp_over_http_accepts_its_own_loopback_origin_and_refuses_foreign_ones() {
    let host = mcp_host().await;
    let server = Server::start(&host).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
    .to_string();
    let status = |origin: String| {
        let (addr, body) = (server.addr.clone(), body.clone());
        async move {
            crate::harness::post_with_headers(&addr, "/mcp", "alice", &origin, &body)
                .await
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u16>()
                .unwrap()
        }
    };
    assert_eq!(
        status(String::new()).await,
        200,
        "non-browser clients send no Origin"
    );
    let port = server.addr.rsplit(':').next().unwrap();
    let other_port = if port == "8080" { "8081" } else { "8080" };
    // A page of this very server (it serves none): a local browser client.
    for origin in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("http://LOCALHOST:{port}"),
    ] {
        assert_eq!(
            status(format!("Origin: {origin}\r\n")).await,
            200,
            "{origin}"
        );
    }
    // Anyone else's page, other local ports and look-alikes included.
    for origin in [
        "https://evil.example".to_string(),
        format!("http://evil.example:{port}"),
        format!("http://localhost:{other_port}"),
        "http://localhost".to_string(),
        format!("https://localhost:{port}"),
        format!("http://localhost.evil.example:{port}"),
        format!("http://127.0.0.1.nip.io:{port}"),
        "null".to_string(),
    ] {
        assert_eq!(
            status(format!("Origin: {origin}\r\n")).await,
            403,
            "{origin}"
        );
    }
}

/// A policy reload that changes what the principal may call tells every
/// connected MCP client (`notifications/tools/list_changed`, advertised at
/// initialize), over stdio and over HTTP; its next `tools/list` shows it.
#[tokio::test]
async fn a_policy_reload_tells_connected_mcp_clients_their_tools_changed() {
    let policy = tempfile::tempdir().unwrap();
    let next = tempfile::tempdir().unwrap();
    std::fs::write(policy.path().join("open0.rego"), crate::harness::ALLOW_ALL).unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .plugin(fixtures::FETCH, "{}")
        .policy_dir(policy.path())
        .policy_settings("reload_interval_ms = 50")
        .start()
        .await;
    let server = Server::start(&host).await;
    let url = format!("http://{}/mcp", server.addr);
    let config = host.config_path.to_str().unwrap().to_string();
    let token = token("alice");
    let faces: [&[&str]; 2] = [
        &["stdio", env!("CARGO_BIN_EXE_warden"), &config, "alice"],
        &["http", &url, &token],
    ];
    for (n, face) in faces.into_iter().enumerate() {
        // Each face starts from a bundle allowing everything, which the
        // client replaces with one allowing only `text.*`.
        let (open, narrow) = (format!("open{n}.rego"), format!("narrow{n}.rego"));
        for stale in std::fs::read_dir(policy.path()).unwrap() {
            std::fs::remove_file(stale.unwrap().path()).unwrap();
        }
        std::fs::write(policy.path().join(&open), crate::harness::ALLOW_ALL).unwrap();
        // The serving process has taken the open bundle when it lists fetch.
        let mut listed = Value::Null;
        for _ in 0..200 {
            listed = http(&server.addr, "GET", "/v1/tools", Some(&token), "")
                .await
                .unwrap()
                .1;
            if listed["tools"].as_array().is_some_and(|t| t.len() > 3) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(listed["tools"].as_array().unwrap().len() > 3, "{listed}");
        std::fs::write(
            next.path().join(&narrow),
            "package warden.authz\n\ndecision := {\"allow\": startswith(input.target.name, \"text.\"), \"reasons\": [\"only text\"]}\n",
        )
        .unwrap();
        let moved_from = next.path().join(&narrow);
        let moved_to = policy.path().join(&open);
        let mut args = face.to_vec();
        args.extend([moved_from.to_str().unwrap(), moved_to.to_str().unwrap()]);
        let report = client_scenario("list-changed", &args);
        assert_eq!(report["advertised"], json!(true), "{face:?}: {report}");
        assert_eq!(report["notified"], json!(true), "{face:?}: {report}");
        assert_eq!(
            report["after"],
            json!(["text.json_pointer", "text.stats", "text.transform"]),
            "{face:?}: {report}"
        );
        assert!(
            report["before"].as_array().unwrap().len() > 2,
            "{face:?}: {report}"
        );
    }
}

/// The official MCP conformance suite (`tests/conformance`, from npm),
/// installed once into the target directory.
fn conformance_suite() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("mcp-conformance");
    let lock = repo().join("tests/conformance/package-lock.json");
    let installed = std::fs::read(dir.join("package-lock.json")).ok();
    let suite = dir.join("node_modules/.bin/conformance");
    if installed != std::fs::read(&lock).ok() || !suite.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            repo().join("tests/conformance/package.json"),
            dir.join("package.json"),
        )
        .unwrap();
        std::fs::copy(&lock, dir.join("package-lock.json")).unwrap();
        let status = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot install the MCP conformance suite into {} with `npm ci`: install Node.js \
             and npm (and reach the npm registry)",
            dir.display()
        );
    }
    suite
}

/// The MCP conformance suite's server scenarios through `warden serve`'s
/// `/mcp`: every scenario passes except those
/// `tests/conformance/expected-failures.yml` lists with their reasons, and
/// none of those passes (the list must shrink as they do). The suite sends
/// no token, so a proxy adds one (`bearer_proxy.py`).
#[tokio::test]
async fn the_mcp_conformance_suite_passes_all_but_its_listed_server_scenarios() {
    let suite = conformance_suite();
    let host = mcp_host().await;
    let server = Server::start(&host).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream_port = server.addr.rsplit(':').next().unwrap().to_string();
    let mut proxy = Command::new(python())
        .arg(repo().join("tests/e2e/bearer_proxy.py"))
        .args([port.to_string(), upstream_port, token("alice")])
        .spawn()
        .expect("start the bearer proxy");
    let proxy_addr = format!("127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if http(&proxy_addr, "GET", "/healthz", None, "")
            .await
            .is_some()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = up.then(|| {
        Command::new(&suite)
            .args(["server", "--url", &format!("http://localhost:{port}/mcp")])
            .arg("--expected-failures")
            .arg(repo().join("tests/conformance/expected-failures.yml"))
            .output()
            .expect("run the conformance suite")
    });
    let _ = proxy.kill();
    let _ = proxy.wait();
    let out = out.expect("the bearer proxy did not come up");
    assert!(
        out.status.success(),
        "MCP conformance suite:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn mcp_over_stdio_answers_bad_messages_with_errors_and_keeps_serving() {
    let host = mcp_host().await;
    let mut session = StdioSession::start(&host).await;

    session
        .send_line(r#"{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}"#)
        .await;
    let unknown = session.response().await;
    assert_eq!(
        (unknown["id"].clone(), unknown["error"]["code"].clone()),
        (json!(1), json!(-32601))
    );

    session.send_line("{this is not json").await;
    let malformed = session.response().await;
    assert_eq!(malformed["id"], Value::Null);
    assert_eq!(malformed["error"]["code"], -32700, "{malformed}");

    // 17 MiB in one line: past the 16 MiB message limit.
    let huge = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "text.transform", "arguments": {"text": "x".repeat(17 << 20), "op": "upper"}}});
    session.send_line(&huge.to_string()).await;
    let oversized = session.response().await;
    assert_eq!(oversized["error"]["code"], -32600);
    assert!(
        oversized["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16 MiB")
    );

    let ok = session.call_transform(3).await;
    assert_eq!(ok["id"], 3);
    assert_eq!(ok["result"]["structuredContent"], json!({"text": "OK"}));
    let _ = session.child.start_kill();
}

#[tokio::test]
async fn an_mcp_client_that_disconnects_mid_call_does_not_disturb_the_host() {
    let host = mcp_host().await;
    let server = Server::start(&host).await;
    // A client that sends half a request and hangs up.
    {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
        let partial = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"jsonrpc\":",
            server.addr,
            token("alice")
        );
        stream.write_all(partial.as_bytes()).await.unwrap();
    }
    // A stdio client that disconnects right after sending a call.
    let mut session = StdioSession::start(&host).await;
    session
        .send_line(
            &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
            "name": "text.transform", "arguments": {"text": "bye", "op": "upper"}}})
            .to_string(),
        )
        .await;
    drop(session);
    // The HTTP face still serves a full MCP client.
    let report = client(&[
        "http",
        &format!("http://{}/mcp", server.addr),
        &token("alice"),
    ]);
    assert_eq!(report["ok"]["structured"], json!({"text": "HELLO"}));
}

#[tokio::test]
async fn an_mcp_connection_is_one_session_whatever_the_trace_context() {
    let host = mcp_host().await;
    let mut session = StdioSession::start(&host).await;
    session.call_transform(1).await;
    session.call_transform(2).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    session
        .send_line(
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
                "_meta": {"traceparent": format!("00-{trace_id}-00f067aa0ba902b7-01")},
                "name": "text.transform", "arguments": {"text": "traced", "op": "upper"}}})
            .to_string(),
        )
        .await;
    session.response().await;
    let _ = session.child.start_kill();
    let sessions: Vec<Option<String>> = host
        .records()
        .await
        .into_iter()
        .map(|r| r.record.session)
        .collect();
    assert_eq!(sessions.len(), 3);
    assert!(sessions[0].is_some(), "a stdio connection is a session");
    assert_eq!(sessions[0], sessions[1], "one connection, one session");
    assert_eq!(sessions[0], sessions[2], "trace context is not a session");
}

/// Every face lists the same tools for a principal: policy can never allow
/// alice `fetch.get`, so MCP `tools/list`, `GET /v1/tools` and
/// `warden tools --as alice` all leave it out (`warden tools` alone is the
/// operator's view of every configured tool).
#[tokio::test]
async fn every_face_lists_only_the_tools_policy_lets_the_principal_see() {
    let host = mcp_host().await;
    let visible = ["text.json_pointer", "text.stats", "text.transform"];

    let mut stdio = StdioSession::start_as(&host, "alice").await;
    stdio
        .send_line(r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#)
        .await;
    let listed = stdio.response().await;
    let mcp: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(mcp, visible, "{listed}");

    let server = Server::start(&host).await;
    let (status, body) = http(&server.addr, "GET", "/v1/tools", Some(&token("alice")), "")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let api: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(api, visible, "{body}");

    let names = |args: &[&str]| {
        let out = host.cli(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(|l| l.trim_end_matches(" [side effects]").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&["tools", "--as", "alice"]), visible);
    let mut every = visible.to_vec();
    every.insert(0, "fetch.get");
    assert_eq!(names(&["tools"]), every);

    let unknown = host.cli(&["tools", "--as", "mallory"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no principal `mallory`"));
}
