//! Exhausting the host (issue 12, classes 4, 5 and 7): disk quotas charged by
//! what the disk holds, per-call descriptor and request caps, and an instance
//! pool sized from the configuration. Each attack runs against a real
//! component; the host keeps serving other calls.

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
        toml_path(&manifest("hostile-fs")),
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
        .plugin("text", "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    QuotaHost { host, rw, _ro: ro }
}

#[tokio::test]
async fn sparse_writes_are_charged_by_the_blocks_they_allocate() {
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
async fn empty_files_directories_and_links_cost_a_block_each() {
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
async fn data_below_a_path_longer_than_path_max_is_counted() {
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
