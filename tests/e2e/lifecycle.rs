//! A replica's lifecycle as an orchestrator sees it: `/readyz` follows the
//! audit store (ready while records reach the trail, committed or spooled),
//! and SIGTERM drains — no new connections, the calls already taken are
//! answered and recorded, the audit queue is flushed, exit 0 — within
//! `server.drain_timeout_ms`.

use crate::fixtures;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{ALLOW_ALL, Harness, Host, Relay, Server, Store, TestDb, http, token};

async fn ready(app: &axum::Router) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Asks `/readyz` until it answers `status`, for at most five seconds (a
/// readiness check reaches the store at most once a second).
async fn ready_becomes(app: &axum::Router, status: StatusCode) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (now, body) = ready(app).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {now}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A host whose PostgreSQL is reached through `relay`.
async fn host_behind(relay: &Relay, audit_settings: &str) -> Host {
    let mut db = TestDb::create().await;
    db.url = relay.url(&db.url);
    Harness::new(Store::Postgres)
        .database(db)
        .plugin(fixtures::TEXT, "{}")
        .audit_settings(audit_settings)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_ready_while_records_reach_the_store_and_not_when_they_cannot() {
    let mut relay = Relay::new().await;
    relay.up().await;
    let host = host_behind(&relay, "").await;
    let policy = host.kernel.policy().hash().to_string();
    let app = warden::server::router(std::sync::Arc::new(host.kernel), &Default::default());
    // No token needed, like /healthz: an orchestrator's probe has none.
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["audit"], "committing");
    assert_eq!(body["policy"], policy);
    assert!(body["targets"].as_u64().unwrap() >= 1, "{body}");
    assert_eq!(body["in_flight"], 0);

    // Without a spool, calls are denied while the store is away: not ready.
    relay.down();
    let body = ready_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["audit"], "unavailable");
    // The same holds once a call has found the store failing.
    let (_, call) = invoke(&app, "alice", "x").await;
    assert_eq!(call["error"]["code"], "audit-unavailable", "{call}");
    assert_eq!(ready(&app).await.0, StatusCode::SERVICE_UNAVAILABLE);

    relay.up().await;
    let body = ready_becomes(&app, StatusCode::OK).await;
    assert_eq!(body["audit"], "committing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_ready_while_a_spool_takes_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::new().await;
    relay.up().await;
    let spool = format!(
        "spool = {}",
        crate::harness::toml_path(&dir.path().join("audit.spool"))
    );
    let host = host_behind(&relay, &spool).await;
    let app = warden::server::router(std::sync::Arc::new(host.kernel), &Default::default());
    assert_eq!(ready(&app).await.0, StatusCode::OK);
    relay.down();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = ready(&app).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a spool keeps the host ready: {body}"
        );
        if body["audit"] == "spooling" {
            break;
        }
        assert!(Instant::now() < deadline, "never reported spooling: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, call) = invoke(&app, "alice", "spooled").await;
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(ready(&app).await.1["audit"], "spooling");
}

async fn invoke(app: &axum::Router, who: &str, text: &str) -> (StatusCode, Value) {
    let request = Request::post("/v1/tools/text.transform/invoke")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", token(who)))
        .body(Body::from(
            json!({"args": {"text": text, "op": "upper"}}).to_string(),
        ))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A host with the text tool and the hostile plugin's `write_slowly`, which
/// writes into `rw` after the seconds it is given.
async fn slow_host(rw: &std::path::Path, ro: &std::path::Path, extra: &str) -> Host {
    Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .plugin(
            fixtures::HOSTILE,
            &crate::harness::hostile_grants(rw, ro, ""),
        )
        .policy(ALLOW_ALL)
        .extra_config(extra)
        .start()
        .await
}

/// Starts a side-effecting call that takes `seconds`.
fn slow_call(server: &Server, seconds: u64) -> tokio::task::JoinHandle<Option<(u16, Value)>> {
    let addr = server.addr.clone();
    tokio::spawn(async move {
        let body = json!({"args": {"path": "/data/rw/late.txt", "seconds": seconds}}).to_string();
        http(
            &addr,
            "POST",
            "/v1/tools/hostile.write_slowly/invoke",
            Some(&token("root")),
            &body,
        )
        .await
    })
}

fn terminate(server: &Server) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to `bound` for the server to exit; its exit status.
async fn exited(server: &mut Server, bound: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "warden serve did not exit within {bound:?} of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens an MCP session and its event stream (`GET /mcp`), which stays
/// open until the server ends the session; the stream's socket.
async fn open_mcp_event_stream(addr: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "drain-test", "version": "0"}}});
    let response =
        crate::harness::post_with_headers(addr, "/mcp", "alice", "", &init.to_string()).await;
    let session = response
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("mcp-session-id:")
                .then(|| l.split_once(':').unwrap().1.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no session id: {response}"));
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let header = format!("Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-06-18\r\n");
    crate::harness::post_with_headers(addr, "/mcp", "alice", &header, &initialized.to_string())
        .await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n{header}\
         Accept: text/event-stream\r\n\r\n",
        token("alice")
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the event stream opens");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_and_records_every_call_taken_and_exits_zero() {
    let (rw, ro) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = slow_host(rw.path(), ro.path(), "").await;
    let mut server = Server::start(&host).await;
    // An MCP client listening for notifications does not hold the drain up.
    let _events = open_mcp_event_stream(&server.addr).await;
    // In flight when the signal comes: a 2 s side-effecting call.
    let slow = slow_call(&server, 2);
    // Sixteen clients call, one connection per call, until refused.
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let addr = server.addr.clone();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                for i in 0.. {
                    let body = json!({"args": {"text": format!("{c}-{i}"), "op": "upper"}});
                    let path = "/v1/tools/text.transform/invoke";
                    let alice = token("alice");
                    match http(&addr, "POST", path, Some(&alice), &body.to_string()).await {
                        Some((200, body)) => {
                            answered.push(body["call_id"].as_str().unwrap().to_string());
                        }
                        Some((status, body)) => panic!("{status}: {body}"),
                        None => return answered,
                    }
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let signalled = Instant::now();
    terminate(&server);
    // Well within the default 30 s deadline: the drain waits for calls,
    // not for idle streams.
    let status = exited(&mut server, Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "drained in {:?}",
        signalled.elapsed()
    );

    let (code, body) = slow.await.unwrap().expect("the call in flight is answered");
    assert_eq!(code, 200, "{body}");
    assert!(rw.path().join("late.txt").exists());
    let mut answered = vec![body["call_id"].as_str().unwrap().to_string()];
    for client in clients {
        answered.extend(client.await.unwrap());
    }
    assert!(
        answered.len() > 16,
        "only {} calls answered",
        answered.len()
    );
    crate::harness::assert_recorded(&host, &answered).await;
    // Nothing was left half done: no intent without its final record.
    let incomplete = host.cli(&["audit", "query", "--incomplete"]);
    assert_eq!(String::from_utf8_lossy(&incomplete.stdout).trim(), "");
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_longer_than_the_drain_deadline_is_cut_off_unanswered_and_left_incomplete() {
    let (rw, ro) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = slow_host(rw.path(), ro.path(), "[server]\ndrain_timeout_ms = 500").await;
    let mut server = Server::start(&host).await;
    let (status, body) = http(
        &server.addr,
        "POST",
        "/v1/tools/text.transform/invoke",
        Some(&token("alice")),
        &json!({"args": {"text": "before", "op": "upper"}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let slow = slow_call(&server, 10);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    terminate(&server);
    let status = exited(&mut server, Duration::from_secs(8)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exited {:?} after SIGTERM with a 500 ms deadline",
        signalled.elapsed()
    );
    assert!(
        slow.await.unwrap().is_none(),
        "the cut-off call got no answer"
    );
    assert!(!rw.path().join("late.txt").exists());
    crate::harness::assert_recorded(&host, &[body["call_id"].as_str().unwrap().to_string()]).await;
    // Its intent is in the trail, with no final record: the operator sees
    // a side effect that may or may not have happened.
    let incomplete = host.cli(&["audit", "query", "--incomplete"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&incomplete.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["tool"], "hostile.write_slowly");
}
