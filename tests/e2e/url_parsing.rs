//! Policy and sandbox read URLs alike (issue 12, class 9): the default
//! bundle's fetch allow-list reads a URL with `warden.parse_url`, the parser
//! egress uses, so the host policy allowed is the host the sandbox reaches,
//! whatever the spelling.

use crate::fixtures;
use serde_json::json;
use warden::ErrorCode;

use crate::harness::{Harness, Host, Store, TestServer, error, manifest, output, repo, toml_path};

/// The default bundle (without its own tests) with an allow-list of
/// `localhost` only: 127.0.0.1 is granted to the sandbox but policy forbids it.
fn bundle(dir: &std::path::Path) {
    for entry in std::fs::read_dir(repo().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
    std::fs::write(
        dir.join("data.json"),
        r#"{"roles": {"researcher": {"tools": ["fetch.*"]}, "admin": {"tools": ["**"]}},
            "fetch": {"allowed_hosts": ["localhost"]}}"#,
    )
    .unwrap();
}

/// `forbidden` on 127.0.0.1 and `allowed` as `localhost`, both granted to
/// the fetch and hostile-egress plugins; policy allows only `localhost`.
async fn host(forbidden: &TestServer, allowed: &TestServer, policy: &std::path::Path) -> Host {
    let grants = format!(
        "{{ outbound_http = [\"{}\", \"http://localhost:{}\"], \
         private_ranges = [\"127.0.0.0/8\", \"::1/128\"] }}",
        forbidden.origin(),
        allowed.addr.port()
    );
    Harness::new(Store::Sqlite)
        .policy_dir(policy)
        .plugin_entry(
            "fetch",
            &format!(
                "manifest = {}\ngrants = {grants}",
                toml_path(&manifest(fixtures::FETCH))
            ),
        )
        .plugin_entry(
            "hostile-egress",
            &format!(
                "manifest = {}\nallow_reduced = true\ngrants = {grants}",
                toml_path(&manifest(fixtures::HOSTILE_EGRESS))
            ),
        )
        .start()
        .await
}

#[tokio::test]
async fn the_fetch_allow_list_and_egress_read_every_spelling_alike() {
    let forbidden = TestServer::start("forbidden").await;
    let allowed = TestServer::start("allowed").await;
    let policy = tempfile::tempdir().unwrap();
    bundle(policy.path());
    let host = host(&forbidden, &allowed, policy.path()).await;
    let (f, a) = (forbidden.addr.port(), allowed.addr.port());

    // Spellings whose host is 127.0.0.1 (or unreadable): denied by policy,
    // whatever text follows a `#`, `?`, `\` or sits in the userinfo.
    let denied = [
        (format!("http://127.0.0.1:{f}#@localhost:{a}/"), "127.0.0.1"),
        (
            format!("http://127.0.0.1:{f}/#@localhost:{a}/"),
            "127.0.0.1",
        ),
        (format!("http://127.0.0.1:{f}?@localhost:{a}/"), "127.0.0.1"),
        (
            format!("http://127.0.0.1:{f}\\@localhost:{a}/"),
            "127.0.0.1",
        ),
        (format!("http://localhost:{a}@127.0.0.1:{f}/"), "127.0.0.1"),
        (format!("http://2130706433:{f}/"), "127.0.0.1"),
        (format!("http://0x7f.1:{f}/"), "127.0.0.1"),
        (
            format!("http://[::ffff:127.0.0.1]:{f}/"),
            "::ffff:127.0.0.1",
        ),
    ];
    for (url, host_seen) in &denied {
        let response = host.call("bob", "fetch.get", json!({"url": url})).await;
        let e = error(&response, ErrorCode::PolicyDenied);
        assert_eq!(
            e.reasons,
            vec![format!(
                "host \"{host_seen}\" is not on the fetch allow-list"
            )],
            "{url}"
        );
    }
    let unreadable = format!("http://127.0.0.1%40localhost:{a}/");
    let response = host
        .call("bob", "fetch.get", json!({"url": unreadable}))
        .await;
    error(&response, ErrorCode::PolicyDenied);

    // Spellings whose host is localhost: allowed, and they reach `allowed`.
    let reached = [
        format!("http://localhost:{a}/"),
        format!("HTTP://LOCALHOST.:{a}/"),
        format!("http://localhost:{a}\\@127.0.0.1:{f}/"),
        format!("http://127.0.0.1:{f}@localhost:{a}/"),
        format!("http://localhost:{a}/#@127.0.0.1:{f}"),
    ];
    for url in &reached {
        let response = host.call("bob", "fetch.get", json!({"url": url})).await;
        assert_eq!(output(&response)["body"], "allowed", "{url}");
    }
    assert_eq!(allowed.hits(), reached.len());
    assert_eq!(forbidden.hits(), 0, "a URL policy denied reached 127.0.0.1");
}

/// A plugin that sets the authority itself meets the same parser at egress:
/// each spelling reaches the host `warden.parse_url` names, or nothing.
#[tokio::test]
async fn egress_reads_authorities_with_the_policy_parser() {
    let forbidden = TestServer::start("forbidden").await;
    let allowed = TestServer::start("allowed").await;
    let policy = tempfile::tempdir().unwrap();
    bundle(policy.path());
    let host = host(&forbidden, &allowed, policy.path()).await;
    let (f, a) = (forbidden.addr.port(), allowed.addr.port());
    for (authority, body) in [
        (format!("LOCALHOST.:{a}"), "allowed"),
        (format!("localhost:{a}"), "allowed"),
        (format!("2130706433:{f}"), "forbidden"),
        (format!("0x7f.0.0.1:{f}"), "forbidden"),
        (format!("127.1:{f}"), "forbidden"),
    ] {
        let parsed =
            warden::capabilities::http::parse_url(&format!("http://{authority}/")).unwrap();
        let response = host
            .call(
                "root",
                "hostile-egress.request",
                json!({"method": "GET", "authority": authority}),
            )
            .await;
        assert_eq!(
            output(&response)["body"],
            body,
            "{authority} read as {parsed:?}"
        );
    }
    for authority in [
        format!("[::1]:{f}"),
        format!("127.0.0.2:{f}"),
        format!("localhost.:{f}"),
    ] {
        let response = host
            .call(
                "root",
                "hostile-egress.request",
                json!({"method": "GET", "authority": authority}),
            )
            .await;
        let e = error(&response, ErrorCode::CapabilityDenied);
        assert!(
            e.message.contains("is not granted"),
            "{authority}: {}",
            e.message
        );
    }
    assert_eq!(forbidden.hits(), 3);
}

/// The CLI face: `warden policy eval` decides with the same builtin.
#[tokio::test]
async fn policy_eval_reads_urls_with_the_host_parser() {
    let policy = tempfile::tempdir().unwrap();
    bundle(policy.path());
    let input = policy.path().join("input.json");
    std::fs::write(
        &input,
        json!({
            "version": 1,
            "principal": {"id": "bob", "roles": ["researcher"], "tenant": "acme"},
            "target": {"kind": "tool", "name": "fetch.get", "plugin": "fetch"},
            "args": {"url": "http://127.0.0.1:9#@localhost"},
        })
        .to_string(),
    )
    .unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["policy", "eval", "--input"])
        .arg(&input)
        .arg("--policy")
        .arg(policy.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(r#"host \"127.0.0.1\" is not on the fetch allow-list"#),
        "{stdout} {}",
        String::from_utf8_lossy(&run.stderr)
    );
}
