//! Policy bundles: their own tests, hot reload with an atomic swap, and
//! fail-closed evaluation.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use warden::ErrorCode;
use warden::policy::{BundleFiles, testing};

use crate::harness::{Harness, Store, error, output, repo};

fn copy_bundle(to: &Path) {
    for entry in std::fs::read_dir(repo().join("policies")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn the_default_bundle_passes_its_tests_with_full_coverage() {
    let files = BundleFiles::read(&repo().join("policies")).unwrap();
    let report = testing::run(&files).unwrap();
    let failed: Vec<_> = report.results.iter().filter(|r| !r.passed).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(report.results.len() >= 10);
    assert!(report.coverage_percent() >= 90.0, "{:?}", report.coverage);
}

#[test]
fn policy_test_reports_failures_and_low_coverage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("authz.rego"),
        "package warden.authz\n\ndefault allow := false\n\nallow if input.principal.id == \"root\"\n\n\
         allow if {\n\tinput.principal.id == \"admin\"\n\thelper\n}\n\n\
         helper if input.x == 1\n\n\
         decision := {\"allow\": allow, \"reasons\": []}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("authz_test.rego"),
        "package warden.authz_test\n\nimport data.warden.authz\n\n\
         test_root_allowed if authz.allow with input as {\"principal\": {\"id\": \"root\"}}\n\n\
         test_wrong_expectation if authz.allow with input as {\"principal\": {\"id\": \"eve\"}}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .output()
            .unwrap()
    };
    let dir_arg = dir.path().to_str().unwrap();
    let out = run(&["policy", "test", dir_arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PASS data.warden.authz_test.test_root_allowed"),
        "{text}"
    );
    assert!(
        text.contains("FAIL data.warden.authz_test.test_wrong_expectation (undefined)"),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");

    // Remove the wrong test: passes, but coverage misses the untested rule.
    std::fs::write(
        dir.path().join("authz_test.rego"),
        "package warden.authz_test\n\nimport data.warden.authz\n\n\
         test_root_allowed if authz.allow with input as {\"principal\": {\"id\": \"root\"}}\n",
    )
    .unwrap();
    let out = run(&["policy", "test", dir_arg, "--min-coverage", "100"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("below --min-coverage 100"), "{text}");
    // The second `allow` stops at its first line, so the `helper` line is never reached.
    assert!(text.contains("not covered: 9"), "{text}");
    assert_eq!(run(&["policy", "test", dir_arg]).status.code(), Some(0));
}

#[test]
fn policy_eval_prints_the_decision() {
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        input.path(),
        json!({
            "version": 1,
            "principal": {"id": "bob", "roles": ["researcher"], "tenant": "acme"},
            "target": {"kind": "tool", "name": "fetch.get", "plugin": "fetch"},
            "args": {"url": "https://evil.example.net/"}
        })
        .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["policy", "eval", "--input"])
        .arg(input.path())
        .arg("--policy")
        .arg(repo().join("policies"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["allow"], false);
    assert_eq!(
        decision["reasons"],
        json!([r#"host "evil.example.net" is not on the fetch allow-list"#])
    );
}

#[tokio::test]
async fn hot_reload_swaps_good_bundles_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    copy_bundle(dir.path());
    let host = Harness::new(Store::Sqlite)
        .plugin("text", "{}")
        .policy_dir(dir.path())
        .start()
        .await;
    let args = json!({"text": "x", "op": "upper"});
    let original = host.kernel.policy().hash().to_string();
    output(&host.call("alice", "text.transform", args.clone()).await);
    assert_eq!(
        host.kernel.reload_policy().unwrap(),
        None,
        "unchanged bundle"
    );

    // A syntax error: refused, the active bundle stays.
    std::fs::write(
        dir.path().join("broken.rego"),
        "package warden.authz\n\nallow if {\n",
    )
    .unwrap();
    let e = host.kernel.reload_policy().unwrap_err().to_string();
    assert!(e.contains("broken.rego"), "{e}");
    assert_eq!(host.kernel.policy().hash(), original);
    output(&host.call("alice", "text.transform", args.clone()).await);
    std::fs::remove_file(dir.path().join("broken.rego")).unwrap();

    // A change that breaks the bundle's own tests: refused.
    std::fs::write(
        dir.path().join("data.json"),
        r#"{"roles": {}, "fetch": {"allowed_hosts": []}}"#,
    )
    .unwrap();
    let e = host.kernel.reload_policy().unwrap_err().to_string();
    assert!(e.contains("its own tests fail"), "{e}");
    assert_eq!(host.kernel.policy().hash(), original);

    // A valid change with updated tests: takes effect atomically.
    copy_bundle(dir.path());
    std::fs::write(
        dir.path().join("lockdown.rego"),
        "package warden.authz\n\ndeny contains \"lockdown: text tools are suspended\" if input.target.plugin == \"text\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("warden_test.rego"), "package warden.authz_test\n\nimport data.warden.authz\n\ntest_lockdown if not authz.decision.allow with input as {\"principal\": {\"id\": \"a\", \"roles\": [\"admin\"]}, \"target\": {\"name\": \"text.stats\", \"plugin\": \"text\"}, \"args\": {}}\n").unwrap();
    let new_hash = host.kernel.reload_policy().unwrap().expect("a new bundle");
    assert_ne!(new_hash, original);
    let denied = host.call("alice", "text.transform", args).await;
    let e = error(&denied, ErrorCode::PolicyDenied);
    assert_eq!(e.reasons, vec!["lockdown: text tools are suspended"]);
    assert_eq!(
        host.record(&denied.call_id).await.record.policy_hash,
        new_hash
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_bundle_pushed_during_traffic_never_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    copy_bundle(dir.path());
    let host = Arc::new(
        Harness::new(Store::Sqlite)
            .plugin("text", "{}")
            .policy_dir(dir.path())
            .start()
            .await,
    );
    let original = host.kernel.policy().hash().to_string();
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                let mut responses = Vec::new();
                for _ in 0..25 {
                    responses.push(
                        host.call(
                            "alice",
                            "text.transform",
                            json!({"text": "x", "op": "upper"}),
                        )
                        .await,
                    );
                }
                responses
            })
        })
        .collect();
    // Meanwhile, push a series of broken bundles: allow-everything with a parse
    // error, a decision of the wrong shape, a bundle whose tests fail.
    let broken = [
        (
            "zz.rego",
            "package warden.authz\n\ndecision := {\"allow\": true, \"reasons\": [] \n",
        ),
        ("zz.rego", "package warden.authz\n\nallow := \"yes\"\n"),
        (
            "data.json",
            "{\"roles\": {\"analyst\": {\"tools\": [\"**\"]}}, \"fetch\": {\"allowed_hosts\": []}}",
        ),
    ];
    for (file, text) in broken {
        std::fs::write(dir.path().join(file), text).unwrap();
        assert!(host.kernel.reload_policy().is_err(), "{file}: {text}");
        tokio::task::yield_now().await;
    }
    for caller in callers {
        for response in caller.await.unwrap() {
            output(&response);
            assert_eq!(
                host.record(&response.call_id).await.record.policy_hash,
                original
            );
        }
    }
    assert_eq!(host.kernel.policy().hash(), original);
}

#[tokio::test]
async fn a_policy_that_runs_past_its_time_limit_denies_the_call() {
    let host = Harness::new(Store::Sqlite)
        .plugin("text", "{}")
        .policy(
            "package warden.authz\n\n\
             decision := {\"allow\": count([x | some x in numbers.range(1, 50000000); x % 7 == 0]) > 0, \"reasons\": []}\n",
        )
        .policy_settings("timeout_ms = 5")
        .start()
        .await;
    let response = host
        .call(
            "root",
            "text.transform",
            json!({"text": "x", "op": "upper"}),
        )
        .await;
    let e = error(&response, ErrorCode::PolicyError);
    assert!(e.message.contains("evaluating"), "{}", e.message);
    assert_eq!(
        host.record(&response.call_id).await.record.outcome,
        "policy-error"
    );
}
