//! A plugin gets exactly its capabilities and its limits, and a misbehaving
//! plugin never takes the host down: every failure is a typed, audited result
//! and the next call succeeds.

use crate::fixtures;
use serde_json::json;
use warden::ErrorCode;

use crate::harness::{ALLOW_ALL, Harness, Store, TestServer, error, output};

#[tokio::test]
async fn the_files_tool_cannot_read_outside_its_granted_directory() {
    let granted = tempfile::tempdir().unwrap();
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("inside.txt"), "inside").unwrap();
    std::fs::write(secret.path().join("secret.txt"), "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(secret.path(), granted.path().join("escape")).unwrap();
    std::os::unix::fs::symlink(
        secret.path().join("secret.txt"),
        granted.path().join("secret-link.txt"),
    )
    .unwrap();

    let host = Harness::new(Store::Sqlite)
        .plugin(
            fixtures::FILES,
            &format!(
                "{{ directories = [{{ host = {}, guest = \"/data\", access = \"ro\" }}] }}",
                crate::harness::toml_path(granted.path())
            ),
        )
        .policy(ALLOW_ALL)
        .start()
        .await;

    let inside = host
        .call("root", "files.read", json!({"path": "inside.txt"}))
        .await;
    assert_eq!(output(&inside)["content"], "inside");

    let secret_path = secret.path().join("secret.txt").display().to_string();
    for path in [
        "/etc/passwd".to_string(),
        "../../../../etc/passwd".to_string(),
        "/data/../../etc/passwd".to_string(),
        secret_path,
        "escape/secret.txt".to_string(),
        "secret-link.txt".to_string(),
    ] {
        let response = host.call("root", "files.read", json!({"path": path})).await;
        let e = error(&response, ErrorCode::ToolFailed);
        assert!(
            !e.message.contains("TOP SECRET") && !e.message.contains("root:"),
            "{path}"
        );
    }
    let listing = host.call("root", "files.list", json!({"path": "/"})).await;
    error(&listing, ErrorCode::ToolFailed);
}

#[tokio::test]
async fn the_fetch_tool_reaches_only_granted_origins() {
    let granted = TestServer::start("granted").await;
    let other = TestServer::start("not granted").await;
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::FETCH, &granted.grant())
        .policy(ALLOW_ALL)
        .start()
        .await;

    let ok = host
        .call(
            "root",
            "fetch.get",
            json!({"url": format!("{}/x", granted.origin())}),
        )
        .await;
    assert_eq!(output(&ok)["body"], "granted");

    let other_port = other.addr.port();
    for url in [
        format!("{}/x", other.origin()),
        format!("http://localhost:{other_port}/x"),
        format!("https://127.0.0.1:{}/x", granted.addr.port()),
    ] {
        let response = host.call("root", "fetch.get", json!({"url": url})).await;
        let e = error(&response, ErrorCode::CapabilityDenied);
        assert!(e.message.contains("not granted"), "{url}: {}", e.message);
        let record = host.record(&response.call_id).await.record;
        assert_eq!(record.outcome, "capability-denied");
    }
    assert_eq!(other.hits(), 0);
    assert_eq!(granted.hits(), 1);
}

#[tokio::test]
async fn a_plugin_granted_nothing_gets_nothing() {
    // `fetch` requests any origin, but this host grants none.
    let server = TestServer::start("unreachable").await;
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::FETCH, "{}")
        .policy(ALLOW_ALL)
        .start()
        .await;
    let response = host
        .call(
            "root",
            "fetch.get",
            json!({"url": format!("{}/", server.origin())}),
        )
        .await;
    error(&response, ErrorCode::CapabilityDenied);
    assert_eq!(server.hits(), 0);
    let tool = host.kernel.registry().tool("fetch.get").unwrap();
    let caps = tool.capabilities();
    assert!(
        caps.egress.origins.is_empty()
            && caps.directories.granted.is_empty()
            && caps.env.is_empty()
    );
}
