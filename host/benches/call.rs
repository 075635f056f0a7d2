//! End-to-end cost of governed calls, each answered after its audit record is
//! committed: host start, the commit alone, MCP over stdio and streamable
//! HTTP, the HTTP API under load, and in-process calls sequential and
//! concurrent (whose records share group commits), on SQLite and PostgreSQL.
//!
//! Run with `cargo xtask bench` (builds the plugins first; also runs the
//! per-stage criterion suite, `benches/stages.rs`). Prints median and p99, or
//! throughput, per line; `WARDEN_BENCH_ONLY` runs the lines whose label
//! contains it.

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

#[path = "../../tests/e2e/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Harness, Host, Store};
use serde_json::json;
use warden::CallRequest;

const WARMUP: usize = 200;
const SEQUENTIAL: usize = 3_000;
const CONCURRENT_TASKS: usize = 64;
const CONCURRENT_CALLS: usize = 20_000;
const MCP_HTTP_SESSIONS: usize = 32;
const HTTP_CONNECTIONS: usize = 64;

fn request(host: &Host) -> CallRequest {
    CallRequest {
        principal: host.kernel.principals().by_id("alice").expect("alice"),
        tool: "text.transform".into(),
        args: json!({"text": "benchmark", "op": "upper"}),
        session: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn sequential(host: &Host, label: &str) {
    for _ in 0..WARMUP {
        host.kernel
            .call(request(host))
            .await
            .result
            .expect("warm-up call");
    }
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        let response = host.kernel.call(request(host)).await;
        samples.push(started.elapsed());
        response.result.expect("benchmark call");
    }
    samples.sort();
    println!(
        "{label:<44} median {:>8.1} µs   p99 {:>8.1} µs   ({SEQUENTIAL} calls)",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
    );
}

/// The durable commit alone: one audit record appended and committed.
async fn audit_commits(host: &Host, label: &str) {
    let audit = host.kernel.audit();
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let started = Instant::now();
        audit
            .append(harness::sample_record(format!("bench-{i}")))
            .await
            .expect("commit");
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "{label:<44} median {:>8.1} µs   p99 {:>8.1} µs   ({SEQUENTIAL} commits)",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
    );
}

/// `CONCURRENT_CALLS` calls from `CONCURRENT_TASKS` tasks at once. With
/// `poison_every`, one call in that many names a tool with a NUL in it (as
/// `%00` in a URL does), which PostgreSQL `text` refuses unless the record is
/// escaped: the call is answered `unknown-tool` and recorded, and the
/// poisoned record must cost its batch nothing.
async fn concurrent(host: Arc<Host>, label: &str, poison_every: Option<usize>) {
    let started = Instant::now();
    let per_task = CONCURRENT_CALLS / CONCURRENT_TASKS;
    let tasks: Vec<_> = (0..CONCURRENT_TASKS)
        .map(|t| {
            let host = host.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    let mut request = request(&host);
                    let poisoned =
                        poison_every.is_some_and(|every| (t * per_task + i).is_multiple_of(every));
                    if poisoned {
                        request.tool = format!("text.transform\u{0}{t}-{i}");
                    }
                    match host.kernel.call(request).await.result {
                        Ok(_) => assert!(!poisoned),
                        Err(e) => {
                            assert!(poisoned && e.code == warden::ErrorCode::UnknownTool, "{e}")
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let elapsed = started.elapsed();
    let calls = per_task * CONCURRENT_TASKS;
    let poison = poison_every.map_or(String::new(), |every| format!(", 1 in {every} with a NUL"));
    println!(
        "{label:<44} {:>8.0} calls/s ({calls} calls, {CONCURRENT_TASKS} concurrent{poison})",
        calls as f64 / elapsed.as_secs_f64()
    );
}

/// Host start (config, policy bundle, plugins, audit store) with an empty and
/// with a warm precompiled-component cache.
async fn cold_start() {
    let cache = tempfile::tempdir().expect("cache dir");
    let data = tempfile::tempdir().expect("data dir");
    let settings = format!("[cache]\ndir = {}\n", harness::toml_path(cache.path()));
    let start = || async {
        let started = Instant::now();
        let host = Harness::new(Store::Sqlite)
            .plugin("text", "{}")
            .plugin(
                "files",
                &format!(
                    "{{ directories = [{{ host = {}, guest = \"/data\", access = \"ro\" }}] }}",
                    harness::toml_path(data.path())
                ),
            )
            .plugin("fetch", "{}")
            .extra_config(&settings)
            .start()
            .await;
        let elapsed = started.elapsed();
        drop(host);
        elapsed
    };
    cold_and_warm("host start, 3 plugins (empty / warm cache)", start).await;
}

/// Times `start` once with its cache empty, then five times warm, and prints
/// the cold time and the warm median and maximum.
async fn cold_and_warm<F, Fut>(label: &str, start: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let cold = start().await;
    let mut warm: Vec<_> = Vec::new();
    for _ in 0..5 {
        warm.push(start().await);
    }
    warm.sort();
    println!(
        "{label:<44} cold {:>8.1} ms   warm median {:>6.1} ms   max {:>6.1} ms",
        cold.as_secs_f64() * 1e3,
        warm[2].as_secs_f64() * 1e3,
        warm[4].as_secs_f64() * 1e3,
    );
}

/// Plugins in the restart measurement: distinct Rust components besides the
/// Python and the JavaScript one.
const RESTART_RUST_PLUGINS: usize = 18;

/// Host restart with 20 plugins, each its own component (so each is compiled,
/// cached and loaded on its own): 18 Rust components (`text` with a distinct
/// custom section each), the Python `pytext` and the JavaScript `jstext`.
/// Measured from config to ready (every plugin loaded and described), with
/// an empty and then a warm precompiled-component cache.
async fn restart_20_plugins() {
    let cache = tempfile::tempdir().expect("cache dir");
    let components = tempfile::tempdir().expect("component dir");
    let text = std::fs::read(
        harness::repo().join("plugins/target/wasm32-wasip2/release/warden_text.wasm"),
    )
    .expect("text component (run `cargo xtask plugins`)");
    let text_manifest = harness::toml_path(&harness::manifest("text"));
    let mut entries = Vec::new();
    for i in 0..RESTART_RUST_PLUGINS {
        let path = components.path().join(format!("text{i}.wasm"));
        std::fs::write(&path, with_custom_section(&text, &format!("variant {i}")))
            .expect("write component");
        entries.push((
            format!("text{i}"),
            format!(
                "manifest = {text_manifest}\ncomponent = {}\ngrants = {{}}",
                harness::toml_path(&path)
            ),
        ));
    }
    for plugin in ["pytext", "jstext"] {
        entries.push((
            plugin.to_string(),
            format!(
                "manifest = {}\ngrants = {{}}",
                harness::toml_path(&harness::manifest(plugin))
            ),
        ));
    }
    let settings = format!("[cache]\ndir = {}\n", harness::toml_path(cache.path()));
    let start = || async {
        let mut harness = Harness::new(Store::Sqlite).extra_config(&settings);
        for (name, body) in &entries {
            harness = harness.plugin_entry(name, body);
        }
        let started = Instant::now();
        let host = harness.start().await;
        let elapsed = started.elapsed();
        assert_eq!(host.kernel.registry().plugins().count(), 20);
        drop(host);
        elapsed
    };
    cold_and_warm("host restart, 20 plugins incl. Python + JS", start).await;
}

/// `component` with a custom section appended: the same code, another sha256.
fn with_custom_section(component: &[u8], name: &str) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    leb128(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// MCP `tools/call` round trips over stdio: a minimal JSON-RPC client talking
/// to `warden mcp`, durable audit on.
async fn mcp_stdio(host: &Host, label: &str) {
    let mut session = harness::StdioSession::start(host).await;
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for i in 0..(WARMUP + SEQUENTIAL) {
        let started = Instant::now();
        let response = session.call_transform(i as u64 + 1).await;
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
        assert_eq!(response["result"]["structuredContent"]["text"], "OK");
    }
    samples.sort();
    println!(
        "{label:<44} median {:>8.1} µs   p99 {:>8.1} µs   ({SEQUENTIAL} calls)",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
    );
}

/// MCP `tools/call` over streamable HTTP against a `warden serve` process,
/// with rmcp's client: sequential round trips, then the throughput of
/// concurrent client sessions. Each answer follows its committed audit record.
async fn mcp_http(host: &Host, label: &str) {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = harness::Server::start(host).await;
    let url = format!("http://{}/mcp", server.addr);
    let connect = || async {
        let config = StreamableHttpClientTransportConfig::with_uri(url.clone())
            .auth_header(harness::token("alice"));
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("bench", "0"),
        )
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP session with warden serve")
    };
    let call = |client: &rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>| {
        let mut params = CallToolRequestParams::new("text.transform");
        params.arguments = json!({"text": "benchmark", "op": "upper"})
            .as_object()
            .cloned();
        let client = client.peer().clone();
        async move {
            let result = client.call_tool(params).await.expect("tools/call");
            assert_eq!(result.is_error, Some(false));
        }
    };

    let client = connect().await;
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for i in 0..(WARMUP + SEQUENTIAL) {
        let started = Instant::now();
        call(&client).await;
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    println!(
        "{label:<44} median {:>8.1} µs   p99 {:>8.1} µs   ({SEQUENTIAL} calls)",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
    );

    let mut clients = Vec::with_capacity(MCP_HTTP_SESSIONS);
    for _ in 0..MCP_HTTP_SESSIONS {
        clients.push(Arc::new(connect().await));
    }
    let per_session = CONCURRENT_CALLS / MCP_HTTP_SESSIONS;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in &clients {
        let client = client.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_session);
            for _ in 0..per_session {
                let started = Instant::now();
                call(&client).await;
                latencies.push(started.elapsed());
            }
            latencies
        });
    }
    let mut latencies: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "{:<44} {:>8.0} calls/s   p99 {:>8.1} µs   ({} sessions, {} calls)",
        format!("{label}, concurrent"),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        MCP_HTTP_SESSIONS,
        latencies.len(),
    );
}

/// The HTTP API under load: `HTTP_CONNECTIONS` keep-alive clients posting
/// `text.transform` invocations to a `warden serve` process; each response
/// follows its committed audit record.
async fn http_api(host: &Host, label: &str) {
    let server = harness::Server::start(host).await;
    let url = format!("http://{}/v1/tools/text.transform/invoke", server.addr);
    let body = json!({"args": {"text": "benchmark", "op": "upper"}}).to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(HTTP_CONNECTIONS)
        .build()
        .expect("HTTP client");
    let call = |client: reqwest::Client, url: String, body: String| async move {
        let started = Instant::now();
        let response = client
            .post(url)
            .bearer_auth(harness::token("alice"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("HTTP call");
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().await.expect("HTTP body");
        started.elapsed()
    };
    for _ in 0..WARMUP {
        call(client.clone(), url.clone(), body.clone()).await;
    }
    let per_connection = CONCURRENT_CALLS / HTTP_CONNECTIONS;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..HTTP_CONNECTIONS {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_connection);
            for _ in 0..per_connection {
                latencies.push(call(client.clone(), url.clone(), body.clone()).await);
            }
            latencies
        });
    }
    let mut latencies: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "{label:<44} {:>8.0} calls/s   median {:>8.1} µs   p99 {:>8.1} µs   ({HTTP_CONNECTIONS} connections)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
    );
}

/// Whether to run the measurement named `label`: all of them, unless
/// `WARDEN_BENCH_ONLY` names a part of the label (for profiling one).
fn selected(label: &str) -> bool {
    std::env::var("WARDEN_BENCH_ONLY").map_or(true, |only| label.contains(&only))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if selected("host start") {
            cold_start().await;
        }
        if selected("host restart") {
            restart_20_plugins().await;
        }
        for (store, name) in [(Store::Sqlite, "SQLite"), (Store::Postgres, "PostgreSQL")] {
            let host = Arc::new(Harness::new(store).plugin("text", "{}").start().await);
            let label = format!("durable audit commit, {name}");
            if selected(&label) {
                audit_commits(&host, &label).await;
            }
            let label = format!("MCP tools/call over stdio, audit in {name}");
            if selected(&label) {
                mcp_stdio(&host, &label).await;
            }
            let label = format!("MCP tools/call over HTTP, audit in {name}");
            if selected(&label) {
                mcp_http(&host, &label).await;
            }
            let label = format!("HTTP API invoke, audit in {name}");
            if selected(&label) {
                http_api(&host, &label).await;
            }
            let label = format!("text.transform, audit in {name}, sequential");
            if selected(&label) {
                sequential(&host, &label).await;
            }
            let label = format!("text.transform, audit in {name}, concurrent");
            if selected(&label) {
                concurrent(host.clone(), &label, None).await;
            }
            // Not a substring of the line above, so each can be run alone.
            let label = format!("text.transform, audit in {name}, poisoned 1 in 1000, concurrent");
            if selected(&label) {
                concurrent(host, &label, Some(1000)).await;
            }
        }
    });
}
