//! The hostile corpus: plugins and plugin modes that try to escape, exhaust or
//! confuse the sandbox. Every case asserts the error code, the audit record,
//! and that a normal call right after still succeeds.

use crate::fixtures;
use std::path::Path;

use serde_json::{Value, json};
use warden::{CallError, ErrorCode};

use crate::harness::{
    ALLOW_ALL, Harness, Host, Store, TestServer, error, manifest, output, repo, toml_path,
};

const SECRET: &str = "s3cr3t-token-value-7f3a";

/// Host directories of the hostile plugin's sandbox.
struct Dirs {
    rw: tempfile::TempDir,
    ro: tempfile::TempDir,
    outside: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let dirs = Dirs {
            rw: tempfile::tempdir().unwrap(),
            ro: tempfile::tempdir().unwrap(),
            outside: tempfile::tempdir().unwrap(),
        };
        std::fs::write(dirs.ro.path().join("readme.txt"), "read-only data").unwrap();
        std::fs::write(dirs.outside.path().join("secret.txt"), "OUTSIDE SECRET").unwrap();
        dirs
    }

    fn grants(&self) -> String {
        crate::harness::hostile_grants(self.rw.path(), self.ro.path(), "time_limit_ms = 500")
    }
}

async fn hostile_host(dirs: &Dirs, limits: &str) -> Host {
    Harness::new(Store::Sqlite)
        .plugin(fixtures::HOSTILE, &dirs.grants())
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .limits(limits)
        .start()
        .await
}

async fn assert_host_still_serves(host: &Host) {
    let response = host.transform("root", "still here", "upper").await;
    assert_eq!(output(&response), &json!({"text": "STILL HERE"}));
}

/// Calls `tool`, expects `code` with `expected` in the message, checks the
/// audit record, and checks the host still serves a normal call.
async fn contained(
    host: &Host,
    tool: &str,
    args: Value,
    code: ErrorCode,
    expected: &str,
) -> CallError {
    let response = host.call("root", tool, args.clone()).await;
    let e = error(&response, code).clone();
    assert!(e.message.contains(expected), "{tool} {args}: {}", e.message);
    let record = host.record(&response.call_id).await.record;
    assert_eq!(record.outcome, code.as_str(), "{tool} {args}");
    assert_eq!(record.error.as_deref(), Some(e.message.as_str()));
    assert_host_still_serves(host).await;
    e
}

#[tokio::test]
pub(crate) async fn traps_limits_and_garbage_are_typed_results() {
    let dirs = Dirs::new();
    let host = hostile_host(&dirs, "").await;
    let cases = [
        (
            "hostile.panic",
            ErrorCode::Trap,
            "hostile plugin panicked on purpose",
        ),
        ("hostile.spin", ErrorCode::Timeout, "time limit of 500 ms"),
        ("hostile.sleep", ErrorCode::Timeout, "time limit of 500 ms"),
        (
            "hostile.grow",
            ErrorCode::MemoryLimit,
            "memory limit of 32 MiB",
        ),
        ("hostile.recurse", ErrorCode::Trap, "call stack exhausted"),
        (
            "hostile.smash_stack",
            ErrorCode::Trap,
            "out of bounds memory access",
        ),
        ("hostile.exit", ErrorCode::Trap, "exit"),
        ("hostile.bad_json", ErrorCode::InvalidOutput, "not JSON"),
        (
            "hostile.wrong_shape",
            ErrorCode::InvalidOutput,
            "violates its schema at /",
        ),
        (
            "hostile.huge_output",
            ErrorCode::OutputTooLarge,
            "the limit is 1048576",
        ),
        ("hostile.invalid_utf8", ErrorCode::Trap, "utf-8"),
    ];
    for (tool, code, expected) in cases {
        contained(&host, tool, json!({}), code, expected).await;
    }
}

#[tokio::test]
pub(crate) async fn floods_of_output_and_logs_are_absorbed() {
    let dirs = Dirs::new();
    let host = hostile_host(&dirs, "").await;
    for tool in ["hostile.stdout_flood", "hostile.log_flood"] {
        let response = host.call("root", tool, json!({})).await;
        assert_eq!(output(&response), &json!({"flooded": true}), "{tool}");
        assert_host_still_serves(&host).await;
    }
}

#[tokio::test]
async fn fuel_bounds_cpu_when_the_host_meters_it() {
    let dirs = Dirs::new();
    let host = hostile_host(&dirs, "fuel_per_call = 50000000").await;
    contained(
        &host,
        "hostile.spin",
        json!({}),
        ErrorCode::FuelExhausted,
        "ran out of fuel",
    )
    .await;
}

#[tokio::test]
pub(crate) async fn the_filesystem_holds_only_granted_directories() {
    let dirs = Dirs::new();
    let host = hostile_host(&dirs, "").await;
    let outside_secret = dirs.outside.path().join("secret.txt").display().to_string();
    let pwned = std::env::temp_dir().join(format!("warden-pwned-{}", uuid::Uuid::new_v4()));
    let reads = [
        json!({"path": "/etc/passwd"}),
        json!({"path": "/data/ro/../../etc/passwd"}),
        json!({"path": "/data/rw/../../../../../etc/passwd"}),
        json!({"path": outside_secret}),
    ];
    for args in reads {
        let e = contained(&host, "hostile.read_file", args, ErrorCode::ToolFailed, "").await;
        assert!(!e.message.contains("root:") && !e.message.contains("OUTSIDE SECRET"));
    }
    for target in [
        outside_secret.as_str(),
        "../../../../../../etc/passwd",
        "/etc/passwd",
    ] {
        let e = contained(
            &host,
            "hostile.symlink_escape",
            json!({"target": target}),
            ErrorCode::ToolFailed,
            "",
        )
        .await;
        assert!(!e.message.contains("root:") && !e.message.contains("OUTSIDE SECRET"));
    }
    let writes = [
        json!({"path": "/data/ro/new.txt", "content": "x"}),
        json!({"path": "/data/ro/readme.txt", "content": "overwritten"}),
        json!({"path": pwned.display().to_string(), "content": "x"}),
        json!({"path": "/data/rw/../escaped.txt", "content": "x"}),
    ];
    for args in writes {
        contained(&host, "hostile.write_file", args, ErrorCode::ToolFailed, "").await;
    }
    assert!(!pwned.exists());
    assert!(!dirs.ro.path().join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dirs.ro.path().join("readme.txt")).unwrap(),
        "read-only data"
    );
    assert!(
        !dirs
            .rw
            .path()
            .parent()
            .unwrap()
            .join("escaped.txt")
            .exists()
    );

    // Positive controls: the granted directories do work.
    let ok = host
        .call(
            "root",
            "hostile.write_file",
            json!({"path": "/data/rw/ok.txt", "content": "fine"}),
        )
        .await;
    output(&ok);
    assert_eq!(
        std::fs::read_to_string(dirs.rw.path().join("ok.txt")).unwrap(),
        "fine"
    );
    let ok = host
        .call(
            "root",
            "hostile.read_file",
            json!({"path": "/data/ro/readme.txt"}),
        )
        .await;
    assert_eq!(output(&ok)["content"], "read-only data");
}

#[tokio::test]
pub(crate) async fn only_granted_and_requested_environment_variables_are_visible() {
    let dirs = Dirs::new();
    let host = hostile_host(&dirs, "").await;
    let response = host.call("root", "hostile.read_env", json!({})).await;
    assert_eq!(
        output(&response),
        &json!({"env": {"GRANTED_VAR": "visible"}})
    );
}

/// A host with the fetch plugin granted `granted`'s origin and `other`'s,
/// and a secret bound to `granted` only.
async fn fetch_host(granted: &TestServer, other: &TestServer, limits: &str) -> Host {
    Harness::new(Store::Sqlite)
        .limits(limits)
        .secret("api_token", SECRET)
        .plugin(
            fixtures::FETCH,
            &format!(
                "{{ outbound_http = [\"{}\", \"{}\"], private_ranges = [\"127.0.0.1/32\"], \
                 secrets = [{{ secret = \"api_token\", origin = \"{}\", header = \"x-api-key\" }}] }}",
                granted.origin(),
                other.origin(),
                granted.origin()
            ),
        )
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await
}

#[tokio::test]
async fn outbound_http_reaches_only_granted_origins_and_public_addresses() {
    let granted = TestServer::start("granted").await;
    let other = TestServer::start("other").await;
    let never = TestServer::start("never").await;
    let host = fetch_host(&granted, &other, "http_response_body_max = 65536").await;
    let (g, n) = (granted.addr.port(), never.addr.port());
    let cases = [
        (format!("http://127.0.0.1:{n}/"), "origin http://127.0.0.1:"),
        (format!("http://127.0.0.2:{g}/"), "origin http://127.0.0.2:"),
        (
            format!("https://127.0.0.1:{g}/"),
            "origin https://127.0.0.1:",
        ),
        (
            format!("http://127.0.0.1:{g}@localhost:{n}/"),
            "origin http://localhost:",
        ),
        (
            format!("http://127.0.0.1:{g}/redirect?to=http://127.0.0.1:{n}/"),
            &format!("origin http://127.0.0.1:{n} is not granted"),
        ),
        (
            format!("http://127.0.0.1:{g}/big"),
            "exceeded the limit of 65536 bytes",
        ),
    ];
    for (url, expected) in cases {
        contained(
            &host,
            "fetch.get",
            json!({"url": url, "max_bytes": 1048576}),
            ErrorCode::CapabilityDenied,
            expected,
        )
        .await;
    }
    assert_eq!(never.hits(), 0);
}

#[tokio::test]
async fn names_and_literals_for_loopback_and_metadata_are_refused_unless_granted() {
    let server = TestServer::start("loopback").await;
    let port = server.addr.port();
    let host = Harness::new(Store::Sqlite)
        .plugin(
            fixtures::FETCH,
            &format!(
                "{{ outbound_http = [\"http://localhost:{port}\", \"http://169.254.169.254\", \
                 \"http://10.0.0.1\"] }}"
            ),
        )
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    let cases = [
        (
            format!("http://localhost:{port}/"),
            "localhost resolves to 127.0.0.1, a loopback address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local (cloud metadata)",
        ),
        ("http://10.0.0.1/".to_string(), "a private address"),
    ];
    for (url, expected) in cases {
        contained(
            &host,
            "fetch.get",
            json!({"url": url}),
            ErrorCode::CapabilityDenied,
            expected,
        )
        .await;
    }
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn secrets_go_only_to_their_origin_and_never_into_the_sandbox_or_the_trail() {
    let granted = TestServer::start("granted").await;
    let other = TestServer::start("other").await;
    let host = fetch_host(&granted, &other, "").await;

    let to_granted = host
        .call(
            "root",
            "fetch.get",
            json!({"url": format!("{}/", granted.origin())}),
        )
        .await;
    assert!(!output(&to_granted).to_string().contains(SECRET));
    let headers = granted.received_headers();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0]["x-api-key"], SECRET);

    // The plugin tries to send the header to another origin itself: it has no value to send.
    let exfiltrate = host
        .call(
            "root",
            "fetch.get",
            json!({"url": format!("{}/", other.origin()), "headers": {"x-probe": "1"}}),
        )
        .await;
    output(&exfiltrate);
    let headers = other.received_headers();
    assert_eq!(headers.len(), 1);
    assert!(headers[0].get("x-api-key").is_none());
    assert!(
        !headers
            .iter()
            .flat_map(|h| h.values())
            .any(|v| v.as_bytes() == SECRET.as_bytes())
    );

    // Nothing in the audit trail holds the value.
    for record in host.kernel.audit().store().tail(100).await.unwrap() {
        assert!(!serde_json::to_string(&record).unwrap().contains(SECRET));
    }
}

#[tokio::test]
async fn the_secret_is_not_in_the_plugins_environment() {
    let dirs = Dirs::new();
    let host = Harness::new(Store::Sqlite)
        .secret("api_token", SECRET)
        .plugin(fixtures::HOSTILE, &dirs.grants())
        .policy(ALLOW_ALL)
        .start()
        .await;
    let response = host.call("root", "hostile.read_env", json!({})).await;
    assert!(!output(&response).to_string().contains(SECRET));
}

async fn refused(harness: Harness, expected: &[&str]) {
    match harness.try_start().await {
        Ok(_) => panic!("expected the plugin to be refused"),
        Err((e, _)) => {
            let message = e.to_string();
            for part in expected {
                assert!(message.contains(part), "expected `{part}` in: {message}");
            }
        }
    }
}

fn component(name: &str) -> std::path::PathBuf {
    let path = repo()
        .join("plugins/target/wasm32-wasip2/release")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo xtask plugins`",
        path.display()
    );
    path
}

fn entry(manifest: &Path, component: &Path, extra: &str) -> String {
    format!(
        "manifest = {}\ncomponent = {}\n{extra}",
        toml_path(manifest),
        toml_path(component)
    )
}

#[tokio::test]
async fn components_that_do_not_fit_the_contract_are_refused_at_load() {
    // Imports wasi:sockets, which the host never provides.
    let sockets = component("warden_hostile_sockets.wasm");
    refused(
        Harness::new(Store::Sqlite)
            .plugin_entry("sockets", &entry(&manifest(fixtures::TEXT), &sockets, "")),
        &[
            "plugin `sockets`",
            "raw sockets are never provided",
            "wasi:sockets",
        ],
    )
    .await;
    // A valid component of another world (a wasi:cli command).
    let command = component("warden-hostile-command.wasm");
    refused(
        Harness::new(Store::Sqlite)
            .plugin_entry("command", &entry(&manifest(fixtures::TEXT), &command, "")),
        &[
            "plugin `command`",
            "does not implement the warden:plugin/tool world",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_manifest_that_lies_about_its_tools_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lying = dir.path().join("plugin.toml");
    std::fs::write(
        &lying,
        format!(
            "name = \"calculator\"\nversion = \"1.0.0\"\nkind = \"tool\"\ntools = [\"add\"]\ncomponent = {}\n",
            toml_path(&component("warden_text.wasm"))
        ),
    )
    .unwrap();
    refused(
        Harness::new(Store::Sqlite)
            .plugin_entry("calculator", &format!("manifest = {}", toml_path(&lying))),
        &[
            "declares tools [add]",
            "describes [json_pointer, stats, transform]",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_tampered_component_no_longer_matches_its_pin() {
    let original = std::fs::read(component("warden_text.wasm")).unwrap();
    let pin = warden::digest::sha256_hex(&original);
    let dir = tempfile::tempdir().unwrap();
    let tampered = dir.path().join("text.wasm");
    let mut bytes = original.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&tampered, bytes).unwrap();
    refused(
        Harness::new(Store::Sqlite).plugin_entry(
            "text",
            &entry(
                &manifest(fixtures::TEXT),
                &tampered,
                &format!("sha256 = \"{pin}\""),
            ),
        ),
        &["but the config pins", &pin],
    )
    .await;
    // The untouched component with the same pin loads.
    Harness::new(Store::Sqlite)
        .plugin_entry(
            "text",
            &entry(
                &manifest(fixtures::TEXT),
                &component("warden_text.wasm"),
                &format!("sha256 = \"{pin}\""),
            ),
        )
        .start()
        .await;
}

#[tokio::test]
async fn a_plugin_requesting_more_than_granted_is_refused_unless_reduced_is_allowed() {
    refused(
        Harness::new(Store::Sqlite).plugin(fixtures::HOSTILE, "{}"),
        &[
            "directory /data/rw (rw) is not granted",
            "directory /data/ro (ro) is not granted",
            "env GRANTED_VAR is not granted",
            "allow_reduced",
        ],
    )
    .await;
    let host = Harness::new(Store::Sqlite)
        .plugin_entry(
            "hostile",
            &format!(
                "manifest = {}\nallow_reduced = true",
                toml_path(&manifest(fixtures::HOSTILE))
            ),
        )
        .policy(ALLOW_ALL)
        .start()
        .await;
    let response = host.call("root", "hostile.read_env", json!({})).await;
    assert_eq!(output(&response), &json!({"env": {}}));
    let response = host
        .call(
            "root",
            "hostile.read_file",
            json!({"path": "/data/ro/readme.txt"}),
        )
        .await;
    error(&response, ErrorCode::ToolFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn a_hundred_spinning_calls_do_not_stop_normal_calls() {
    let dirs = Dirs::new();
    let host = std::sync::Arc::new(hostile_host(&dirs, "").await);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spinners: Vec<_> = (0..100)
        .map(|_| {
            let (host, finished) = (host.clone(), finished.clone());
            tokio::spawn(async move {
                let response = host.call("root", "hostile.spin", json!({})).await;
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                response
            })
        })
        .collect();
    tokio::task::yield_now().await;
    for _ in 0..5 {
        assert_host_still_serves(&host).await;
    }
    assert!(
        finished.load(std::sync::atomic::Ordering::SeqCst) < 100,
        "normal calls should complete while spinning calls are still running"
    );
    for spinner in spinners {
        let response = spinner.await.unwrap();
        let code = response.result.as_ref().err().map(|e| e.code);
        assert!(
            matches!(code, Some(ErrorCode::Timeout | ErrorCode::PluginBusy)),
            "{code:?}"
        );
        let record = host.record(&response.call_id).await.record;
        assert!(record.outcome == "timeout" || record.outcome == "plugin-busy");
    }
}

/// Size of the regular files under `dir`.
fn disk_usage(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                disk_usage(&entry.path())
            } else {
                metadata.len()
            }
        })
        .sum()
}

#[tokio::test]
pub(crate) async fn writes_past_the_disk_quota_stop_the_call_and_never_reach_the_disk() {
    const QUOTA: u64 = 4 << 20;
    let dirs = Dirs::new();
    // 1 MiB is already there: the quota covers what the directory holds.
    std::fs::create_dir(dirs.rw.path().join("old")).unwrap();
    std::fs::write(dirs.rw.path().join("old/existing.bin"), vec![7u8; 1 << 20]).unwrap();
    let grants = crate::harness::hostile_grants(
        dirs.rw.path(),
        dirs.ro.path(),
        "time_limit_ms = 5000, disk_quota_mb = 4",
    );
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::HOSTILE, &grants)
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;

    // Streamed writes (std::fs::File::write_all) are stopped at the quota.
    contained(
        &host,
        "hostile.fill_disk",
        json!({"path": "/data/rw/fill.bin", "mb": 64}),
        ErrorCode::DiskQuota,
        "disk quota of 4194304 bytes",
    )
    .await;
    let filled = std::fs::metadata(dirs.rw.path().join("fill.bin"))
        .unwrap()
        .len();
    // Entries and the block map cost a few blocks, so the last 64 KiB chunk
    // of the three MiB left does not fit.
    assert_eq!(filled, (3 << 20) - (64 << 10), "what fits, nothing more");
    assert!(disk_usage(dirs.rw.path()) <= QUOTA);

    // Growing a file with set-size counts too, even though it writes nothing.
    contained(
        &host,
        "hostile.grow_file",
        json!({"path": "/data/rw/sparse.bin", "mb": 1024}),
        ErrorCode::DiskQuota,
        "disk quota",
    )
    .await;
    assert_eq!(
        std::fs::metadata(dirs.rw.path().join("sparse.bin"))
            .unwrap()
            .len(),
        0
    );

    // Space freed on the host side is credited back at the next call.
    std::fs::remove_file(dirs.rw.path().join("fill.bin")).unwrap();
    let ok = host
        .call(
            "root",
            "hostile.fill_disk",
            json!({"path": "/data/rw/fits.bin", "mb": 2}),
        )
        .await;
    assert_eq!(output(&ok)["written_mb"], 2);

    // Concurrent writers share the quota: 1 + 2 MiB are used, 1 MiB is left.
    let race = |i: u32| {
        host.call(
            "root",
            "hostile.fill_disk",
            json!({"path": format!("/data/rw/race-{i}.bin"), "mb": 1}),
        )
    };
    let (a, b, c, d) = tokio::join!(race(0), race(1), race(2), race(3));
    let results = [a, b, c, d];
    let succeeded = results.iter().filter(|r| r.result.is_ok()).count();
    assert!(
        succeeded <= 1,
        "{succeeded} of 4 concurrent 1 MiB writes fit in 1 MiB"
    );
    for refused in results.iter().filter(|r| r.result.is_err()) {
        error(refused, ErrorCode::DiskQuota);
    }
    assert!(disk_usage(dirs.rw.path()) <= QUOTA);
}
