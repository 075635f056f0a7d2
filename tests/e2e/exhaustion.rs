//! Exhausting the host (issue 12, classes 4, 5 and 7): disk quotas charged by
//! what the disk holds, per-call descriptor and request caps, and an instance
//! pool sized from the configuration. Each attack runs against a real
//! component; the host keeps serving other calls.

use crate::fixtures;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{Value, json};
use warden::ErrorCode;

use crate::harness::{ALLOW_ALL, Harness, Host, Store, error, manifest, output, toml_path};

/// A `[plugins.NAME]` body for the hostile-fs fixture with these grants and `extra` settings.
fn hostile_fs(rw: &Path, ro: &Path, extra: &str) -> String {
    format!(
        "manifest = {}\ngrants = {{ directories = [{{ host = {}, guest = \"/rw\", access = \"rw\" }}, \
         {{ host = {}, guest = \"/ro\", access = \"ro\" }}]{extra} }}",
        toml_path(&manifest(fixtures::HOSTILE_FS)),
        toml_path(rw),
        toml_path(ro)
    )
}

async fn assert_host_still_serves(host: &Host) {
    let response = host.transform("alice", "still here", "upper").await;
    assert_eq!(output(&response), &json!({"text": "STILL HERE"}));
}

/// Bytes the disk allocates for `path` (not its length).
fn allocated(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).map_or(0, |m| m.blocks() * 512)
}

/// Calls `tool` and expects `disk-quota`.
async fn over_quota(host: &Host, tool: &str, args: Value) {
    let response = host.call("root", tool, args.clone()).await;
    let e = error(&response, ErrorCode::DiskQuota);
    assert!(e.message.contains("disk quota"), "{tool} {args}: {e}");
    let record = host.record(&response.call_id).await.record;
    assert_eq!(record.outcome, "disk-quota");
    assert_host_still_serves(host).await;
}

struct QuotaHost {
    host: Host,
    rw: tempfile::TempDir,
    _ro: tempfile::TempDir,
}

async fn quota_host(mb: u64) -> QuotaHost {
    let rw = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin_entry(
            "hostile-fs",
            &hostile_fs(rw.path(), ro.path(), &format!(", disk_quota_mb = {mb}")),
        )
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    QuotaHost { host, rw, _ro: ro }
}

#[tokio::test]
pub(crate) async fn sparse_writes_are_charged_by_the_blocks_they_allocate() {
    const QUOTA: u64 = 1 << 20;
    let q = quota_host(1).await;
    // One byte every 4 KiB, every 64 KiB, and 1 GiB apart beyond 1 TiB: each
    // allocates a block (and block-map blocks) for a byte of data.
    for (name, stride, offset) in [
        ("dense.bin", 4096u64, 0u64),
        ("spread.bin", 64 << 10, 0),
        ("far.bin", 1 << 30, 1u64 << 40),
    ] {
        over_quota(
            &q.host,
            "hostile-fs.sparse",
            json!({"path": format!("/rw/{name}"), "count": 2000, "stride": stride, "offset": offset}),
        )
        .await;
        let file = q.rw.path().join(name);
        assert!(
            allocated(&file) <= QUOTA,
            "{name}: {} bytes allocated under a {QUOTA}-byte quota",
            allocated(&file)
        );
        std::fs::remove_file(&file).unwrap();
    }
    // A few sparse bytes fit.
    let ok = q
        .host
        .call(
            "root",
            "hostile-fs.sparse",
            json!({"path": "/rw/few.bin", "count": 10, "stride": 1 << 20, "offset": 1u64 << 40}),
        )
        .await;
    assert_eq!(output(&ok)["written"], 10);
}

#[tokio::test]
pub(crate) async fn empty_files_directories_and_links_cost_a_block_each() {
    let q = quota_host(1).await;
    for (kind, target_len) in [("file", 0), ("dir", 0), ("link", 10), ("link", 4000)] {
        let path = format!("/rw/{kind}-{target_len}");
        over_quota(
            &q.host,
            "hostile-fs.entries",
            json!({"path": path, "count": 100_000, "kind": kind, "target_len": target_len}),
        )
        .await;
        let made = std::fs::read_dir(q.rw.path().join(&path[4..]))
            .unwrap()
            .count();
        assert!(made <= 256, "{kind}: {made} entries under a 1 MiB quota");
        std::fs::remove_dir_all(q.rw.path().join(&path[4..])).unwrap();
    }
}

#[tokio::test]
pub(crate) async fn data_below_a_path_longer_than_path_max_is_counted() {
    let q = quota_host(1).await;
    // 20 levels of 255-byte names: the host path is over 5 KiB.
    let deep = |file: &str| json!({"root": "/rw", "depth": 20, "name_len": 255, "bytes": 300 << 10, "file": file});
    for file in ["a.bin", "b.bin"] {
        let ok = q.host.call("root", "hostile-fs.deep", deep(file)).await;
        assert_eq!(output(&ok)["written"], 300 << 10, "{file}");
    }
    // A third 300 KiB does not fit in 1 MiB, however deep the first two are.
    over_quota(&q.host, "hostile-fs.deep", deep("c.bin")).await;
}

#[tokio::test]
async fn a_tree_too_deep_to_measure_refuses_writes() {
    let q = quota_host(64).await;
    let mut dir = q.rw.path().to_path_buf();
    for _ in 0..300 {
        dir.push("d");
    }
    std::fs::create_dir_all(&dir).unwrap();
    let response = q
        .host
        .call(
            "root",
            "hostile-fs.write",
            json!({"path": "/rw/small.txt", "content": "x"}),
        )
        .await;
    let e = error(&response, ErrorCode::DiskQuota);
    assert!(e.message.contains("could not be measured"), "{e}");
    assert!(!q.rw.path().join("small.txt").exists());
    assert_host_still_serves(&q.host).await;
}

/// Appends one byte-less core module and `idle` core instances of it to a
/// component: it still implements the tool world, and each call would take
/// `idle` more core instances from the engine's pool.
fn padded(component: &[u8], idle: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
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
    fn read_leb(bytes: &[u8], pos: &mut usize) -> usize {
        let (mut n, mut shift) = (0, 0);
        loop {
            let byte = bytes[*pos];
            *pos += 1;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }
    // The appended module's index: one per core module section before it.
    let (mut pos, mut modules) = (8, 0);
    while pos < component.len() {
        let id = component[pos];
        pos += 1;
        let size = read_leb(component, &mut pos);
        modules += usize::from(id == 1);
        pos += size;
    }
    let mut out = component.to_vec();
    let empty_module = b"\0asm\x01\0\0\0";
    out.push(1);
    leb(empty_module.len(), &mut out);
    out.extend(empty_module);
    let mut instances = Vec::new();
    leb(idle, &mut instances);
    for _ in 0..idle {
        instances.push(0x00); // instantiate
        leb(modules, &mut instances);
        instances.push(0x00); // no arguments
    }
    out.push(2);
    leb(instances.len(), &mut out);
    out.extend(instances);
    out
}

#[tokio::test]
async fn idle_core_instances_cannot_take_the_pool_from_other_plugins() {
    let text = crate::harness::repo().join("plugins/target/wasm32-wasip2/release/warden_text.wasm");
    let bytes = std::fs::read(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for idle in [70, 900] {
        let path = dir.path().join(format!("padded-{idle}.wasm"));
        std::fs::write(&path, padded(&bytes, idle)).unwrap();
        let harness = Harness::new(Store::Sqlite)
            .plugin_entry(
                "padded",
                &format!(
                    "manifest = {}\ncomponent = {}\n",
                    toml_path(&manifest(fixtures::TEXT)),
                    toml_path(&path)
                ),
            )
            .policy(ALLOW_ALL);
        match harness.try_start().await {
            Ok(_) => panic!("a component with {idle} idle core instances was loaded"),
            Err((e, _)) => {
                let message = e.to_string();
                assert!(
                    message.contains("padded") && message.contains("core module instances"),
                    "{message}"
                );
            }
        }
    }
    // Padded to just under the limit, it loads; 64 calls of it at once
    // (4000 core instances) leave the pool to other plugins.
    let hostile =
        crate::harness::repo().join("plugins/target/wasm32-wasip2/release/warden_hostile.wasm");
    let path = dir.path().join("hostile-padded.wasm");
    std::fs::write(&path, padded(&std::fs::read(&hostile).unwrap(), 55)).unwrap();
    let (rw, ro) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = Harness::new(Store::Sqlite)
        .plugin_entry(
            "hostile",
            &format!(
                "manifest = {}
component = {}
grants = {}",
                toml_path(&manifest(fixtures::HOSTILE)),
                toml_path(&path),
                crate::harness::hostile_grants(
                    rw.path(),
                    ro.path(),
                    "max_concurrent = 64, time_limit_ms = 5000"
                )
            ),
        )
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    let started = std::time::Instant::now();
    let sleepers: Vec<_> = (0..64)
        .map(|_| host.call("bob", "hostile.sleep", json!({})))
        .collect();
    let others = async {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        for _ in 0..5 {
            assert_host_still_serves(&host).await;
        }
        started.elapsed()
    };
    let (sleepers, others_done) = tokio::join!(join_all(sleepers), others);
    // The others were served while every sleeper still held its instance.
    assert!(
        others_done < std::time::Duration::from_millis(4500),
        "{others_done:?}"
    );
    for response in &sleepers {
        error(response, ErrorCode::Timeout);
    }
}

#[tokio::test]
pub(crate) async fn two_plugins_at_full_concurrency_leave_the_pool_to_others() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let grants = |i: usize| {
        crate::harness::hostile_grants(
            dirs[2 * i].path(),
            dirs[2 * i + 1].path(),
            "max_concurrent = 256, time_limit_ms = 10000",
        )
    };
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::HOSTILE, &grants(0))
        .plugin_entry(
            "hostile2",
            &format!(
                "manifest = {}\ngrants = {}",
                toml_path(&manifest(fixtures::HOSTILE)),
                grants(1)
            ),
        )
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    let started = std::time::Instant::now();
    let sleepers: Vec<_> = (0..512)
        .map(|i| {
            let tool = if i % 2 == 0 {
                "hostile.sleep"
            } else {
                "hostile2.sleep"
            };
            host.call("bob", tool, json!({}))
        })
        .collect();
    let others = async {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        for _ in 0..5 {
            assert_host_still_serves(&host).await;
        }
        started.elapsed()
    };
    let (sleepers, others_done) = tokio::join!(join_all(sleepers), others);
    assert!(
        others_done < std::time::Duration::from_millis(2900),
        "{others_done:?}"
    );
    for response in &sleepers {
        error(response, ErrorCode::Timeout);
    }
}

/// Awaits every future (the test crate has no `futures` dependency).
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[tokio::test]
async fn a_configuration_the_instance_pool_cannot_hold_is_refused() {
    let harness = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{ max_concurrent = 20000 }")
        .limits("max_concurrent_per_plugin = 20000")
        .policy(ALLOW_ALL);
    match harness.try_start().await {
        Ok(_) => panic!("a pool for 20000 concurrent calls was reserved"),
        Err((e, _)) => {
            let message = e.to_string();
            assert!(
                message.contains("20000 calls at once") && message.contains("max_concurrent"),
                "{message}"
            );
        }
    }
}

/// POSTs a tool call to a served host; `None` if the connection failed.
async fn invoke_http(
    server: &crate::harness::Server,
    who: &str,
    tool: &str,
    args: Value,
) -> Option<(u16, Value)> {
    let body = json!({ "args": args }).to_string();
    crate::harness::http(
        &server.addr,
        "POST",
        &format!("/v1/tools/{tool}/invoke"),
        Some(&crate::harness::token(who)),
        &body,
    )
    .await
}

/// Another principal's call over HTTP, a new connection each time, succeeds.
async fn others_are_served(server: &crate::harness::Server) {
    let response = invoke_http(
        server,
        "alice",
        "text.transform",
        json!({"text": "still here", "op": "upper"}),
    )
    .await;
    let Some((status, body)) = response else {
        panic!("the host refused a new connection");
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["text"], "STILL HERE");
}

#[tokio::test]
pub(crate) async fn calls_holding_thousands_of_open_files_leave_descriptors_for_the_host() {
    let (rw, ro) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(ro.path().join("f.txt"), "x").unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin_entry("hostile-fs", &hostile_fs(rw.path(), ro.path(), ""))
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    let server = crate::harness::Server::start(&host).await;
    // Sixteen calls (the plugin's whole concurrency) each try to hold 20,000
    // descriptors on one file of a read-only grant, twice over.
    for _ in 0..2 {
        let attackers: Vec<_> = (0..16)
            .map(|_| {
                invoke_http(
                    &server,
                    "bob",
                    "hostile-fs.open_many",
                    json!({"path": "/ro/f.txt", "count": 20_000}),
                )
            })
            .collect();
        let others = async {
            for _ in 0..10 {
                others_are_served(&server).await;
            }
        };
        let (attacks, ()) = tokio::join!(join_all(attackers), others);
        for attack in attacks {
            let (_, body) = attack.expect("the host refused a connection");
            assert_eq!(body["error"]["code"], "trap", "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("open resources"), "{message}");
        }
    }
    others_are_served(&server).await;
    // The audit trail kept up: every call is recorded and the chain verifies.
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// A server that accepts connections and never answers; counts them.
async fn stalling_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (addr, accepted)
}

#[tokio::test]
pub(crate) async fn calls_flooding_a_stalling_origin_hold_few_connections_each() {
    let (addr, accepted) = stalling_server().await;
    let (rw, ro) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = Harness::new(Store::Sqlite)
        .plugin_entry(
            "hostile-fs",
            &hostile_fs(
                rw.path(),
                ro.path(),
                &format!(
                    ", outbound_http = [\"http://127.0.0.1:{}\"], private_ranges = [\"127.0.0.1/32\"], \
                     time_limit_ms = 4000",
                    addr.port()
                ),
            ),
        )
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    let server = crate::harness::Server::start(&host).await;
    // Four calls: two below the per-call resource cap (they wait for answers
    // that never come), two far above it.
    let attackers: Vec<_> = [100, 100, 5000, 5000]
        .into_iter()
        .map(|count| {
            invoke_http(
                &server,
                "bob",
                "hostile-fs.flood",
                json!({"url": format!("http://127.0.0.1:{}/", addr.port()), "count": count, "hold": true}),
            )
        })
        .collect();
    let others = async {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        for _ in 0..10 {
            others_are_served(&server).await;
        }
    };
    let (attacks, ()) = tokio::join!(join_all(attackers), others);
    for (i, attack) in attacks.into_iter().enumerate() {
        let (_, body) = attack.expect("the host refused a connection");
        let expected = if i < 2 { "timeout" } else { "trap" };
        assert_eq!(body["error"]["code"], expected, "{body}");
    }
    // 32 requests in flight per call, four calls.
    let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        connections <= 4 * 32,
        "{connections} connections to the stalling origin"
    );
}
