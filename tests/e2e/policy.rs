//! Policy bundles: their own tests, hot reload with an atomic swap, and
//! fail-closed evaluation.

use crate::fixtures;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use warden::ErrorCode;
use warden::policy::{BundleFiles, testing};

use crate::harness::{Harness, Store, TestServer, error, output, repo};

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
        .plugin(fixtures::TEXT, "{}")
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
            .plugin(fixtures::TEXT, "{}")
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
                    responses.push(host.transform("alice", "x", "upper").await);
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
        .plugin(fixtures::TEXT, "{}")
        .policy(
            "package warden.authz\n\n\
             decision := {\"allow\": count([x | some x in numbers.range(1, 50000000); x % 7 == 0]) > 0, \"reasons\": []}\n",
        )
        .policy_settings("timeout_ms = 5")
        .start()
        .await;
    let response = host.transform("root", "x", "upper").await;
    let e = error(&response, ErrorCode::PolicyError);
    assert!(e.message.contains("evaluating"), "{}", e.message);
    assert_eq!(
        host.record(&response.call_id).await.record.outcome,
        "policy-error"
    );
}

/// A bundle exercising obligations and the output decision point.
const OBLIGATIONS: &str = r#"package warden.authz

default decision := {"allow": true, "reasons": []}

# Stats of long texts need approval.
decision := {"allow": true, "reasons": [], "obligations": {"require_approval": "long texts need a reviewer"}} if {
	input.target.name == "text.stats"
	count(input.args.text) > 20
}

# Upper-casing is allowed, but its output is redacted.
decision := {"allow": true, "reasons": [], "obligations": {"redact": ["/output/text"]}} if {
	input.target.name == "text.transform"
	input.args.op == "upper"
}

# Fetches retry transient failures twice.
decision := {"allow": true, "reasons": [], "obligations": {"retries": 2}} if {
	input.target.name == "fetch.get"
}

# No text tools once the session has seen untrusted content.
decision := {"allow": false, "reasons": ["session carries untrusted content"]} if {
	input.target.plugin == "text"
	"untrusted-content" in input.session.labels
}

# Finance principals may not run more than 3 calls on this host.
decision := {"allow": false, "reasons": ["finance call budget exhausted"]} if {
	input.principal.attributes.department == "finance"
	input.usage.principal_calls > 3
}

# Outputs that mention a secret word are withheld.
output_decision := {"allow": false, "reasons": ["output mentions the codeword"]} if {
	contains(lower(json.marshal(input.output)), "bluebird")
} else := {"allow": true, "reasons": []}
"#;

#[tokio::test]
async fn obligations_redact_retry_and_require_approval() {
    let server = TestServer::start("page").await;
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .plugin(fixtures::FETCH, &server.grant())
        .policy(OBLIGATIONS)
        .start()
        .await;

    let upper = host.transform("alice", "abc", "upper").await;
    assert_eq!(output(&upper), &json!({"text": "[redacted]"}));
    let lower = host.transform("alice", "ABC", "lower").await;
    assert_eq!(output(&lower), &json!({"text": "abc"}));

    let pending = host
        .call(
            "alice",
            "text.stats",
            json!({"text": "a text longer than twenty characters"}),
        )
        .await;
    let e = error(&pending, ErrorCode::PendingApproval);
    assert_eq!(e.reasons, vec!["long texts need a reviewer"]);
    assert_eq!(
        host.record(&pending.call_id).await.record.outcome,
        "pending-approval"
    );

    let withheld = host.transform("alice", "Bluebird", "lower").await;
    let e = error(&withheld, ErrorCode::PolicyDenied);
    assert!(
        e.message.contains("the output of `text.transform`"),
        "{}",
        e.message
    );
    assert_eq!(e.reasons, vec!["output mentions the codeword"]);

    let flaky = host
        .call(
            "bob",
            "fetch.get",
            json!({"url": format!("{}/unavailable", server.origin())}),
        )
        .await;
    error(&flaky, ErrorCode::ToolTransient);
    assert_eq!(server.hits(), 3, "one call and two retries");
}

#[tokio::test]
async fn principal_attributes_and_usage_reach_policy() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy(OBLIGATIONS)
        .principal_attributes("alice", "{ department = \"finance\" }")
        .start()
        .await;
    let args = json!({"text": "x", "op": "lower"});
    for _ in 0..3 {
        output(&host.call("alice", "text.transform", args.clone()).await);
    }
    let fourth = host.call("alice", "text.transform", args.clone()).await;
    assert_eq!(
        error(&fourth, ErrorCode::PolicyDenied).reasons,
        vec!["finance call budget exhausted"]
    );
    output(&host.call("bob", "text.transform", args).await);
}

#[tokio::test]
async fn a_rule_reading_an_input_field_that_does_not_exist_is_refused() {
    let message = match Harness::new(Store::Sqlite)
        .policy("package warden.authz\n\ndecision := {\"allow\": true, \"reasons\": []}\n\ndeny if input.principal.role == \"x\"\n")
        .try_start()
        .await
    {
        Ok(_) => panic!("expected the bundle to be refused"),
        Err((e, _)) => e.to_string(),
    };
    assert!(
        message.contains("policy.rego:5: `input.principal.role` is not part of the input document"),
        "{message}"
    );
}

/// The documented input contract matches what the host sends: a policy that
/// echoes its input lets the test validate it against docs/schemas.
#[tokio::test]
async fn the_input_document_matches_its_published_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/schemas/policy-input.v1.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let decision_schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/schemas/decision.v1.json")).unwrap(),
    )
    .unwrap();
    let decision_validator = jsonschema::validator_for(&decision_schema).unwrap();
    // Deny with the input as the reason, so the test can read what policy saw.
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy(
            "package warden.authz\n\ndecision := {\"allow\": false, \"reasons\": [json.marshal(input)]}\n",
        )
        .start()
        .await;
    let response = host.transform("alice", "x", "upper").await;
    let seen: serde_json::Value =
        serde_json::from_str(&error(&response, ErrorCode::PolicyDenied).reasons[0]).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&seen)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{seen:#}");
    assert_eq!(seen["session"], json!({"id": null, "labels": []}));
    assert_eq!(seen["principal"]["labels"], json!([]));
    assert_eq!(seen["stage"], "call");
    for decision in [
        json!({"allow": true}),
        json!({"allow": false, "reasons": ["r"], "obligations": {"redact": ["/output/x"], "limits": {"time_limit_ms": 5}, "retries": 1, "labels": ["l"], "require_approval": "why"}}),
    ] {
        assert!(decision_validator.is_valid(&decision), "{decision}");
    }
}

#[tokio::test]
async fn shadow_mode_records_disagreements_without_changing_outcomes() {
    let candidate = tempfile::tempdir().unwrap();
    std::fs::write(
        candidate.path().join("strict.rego"),
        "package warden.authz\n\n\
         decision := {\"allow\": false, \"reasons\": [\"candidate: no reversing\"]} if input.args.op == \"reverse\"\n\
         else := {\"allow\": true, \"reasons\": []}\n",
    )
    .unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy_settings(&format!(
            "shadow_dir = {}",
            crate::harness::toml_path(candidate.path())
        ))
        .start()
        .await;
    let reversed = host.transform("alice", "ab", "reverse").await;
    assert_eq!(
        output(&reversed),
        &json!({"text": "ba"}),
        "shadow must not change the outcome"
    );
    let record = host.record(&reversed.call_id).await.record;
    let shadow = record.shadow.expect("a disagreement is recorded");
    assert!(
        shadow.contains(r#"decided deny ["candidate: no reversing"]"#),
        "{shadow}"
    );

    let agreed = host.transform("alice", "ab", "upper").await;
    output(&agreed);
    assert_eq!(host.record(&agreed.call_id).await.record.shadow, None);
    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert_eq!(report.failure, None);
}

fn warden_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn signed_bundles_are_required_when_a_key_is_configured() {
    let keys = tempfile::tempdir().unwrap();
    let secret = keys.path().join("policy.key");
    let keygen = warden_cli(&["policy", "keygen", "--out", secret.to_str().unwrap()]);
    assert_eq!(keygen.status.code(), Some(0));
    let public = String::from_utf8(keygen.stdout).unwrap().trim().to_string();
    let bundle = tempfile::tempdir().unwrap();
    copy_bundle(bundle.path());
    let settings = format!("public_key = \"{public}\"");
    let start = |settings: String, dir: std::path::PathBuf| async move {
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .policy_dir(&dir)
            .policy_settings(&settings)
            .try_start()
            .await
    };

    let unsigned = start(settings.clone(), bundle.path().to_path_buf()).await;
    let e = unsigned
        .err()
        .expect("an unsigned bundle is refused")
        .0
        .to_string();
    assert!(e.contains("unsigned"), "{e}");

    let bundle_arg = bundle.path().to_str().unwrap();
    assert_eq!(
        warden_cli(&[
            "policy",
            "sign",
            bundle_arg,
            "--key",
            secret.to_str().unwrap()
        ])
        .status
        .code(),
        Some(0)
    );
    let Ok(host) = start(settings.clone(), bundle.path().to_path_buf()).await else {
        panic!("the signed bundle should load");
    };
    output(&host.transform("alice", "x", "upper").await);

    // Change the bundle after signing: the reload is refused and the old bundle stays.
    std::fs::write(
        bundle.path().join("extra.rego"),
        "package warden.authz\n\ndeny contains \"all\" if true\n",
    )
    .unwrap();
    let e = host.kernel.reload_policy().unwrap_err().to_string();
    assert!(e.contains("not a valid signature"), "{e}");
    output(&host.transform("alice", "x", "upper").await);

    // A key that is not an ed25519 key is a config error naming the field.
    let e = start("public_key = \"abcd\"".into(), bundle.path().to_path_buf())
        .await
        .err()
        .unwrap()
        .0
        .to_string();
    assert!(e.contains("field `policy.public_key`"), "{e}");
}

#[tokio::test]
async fn audit_replay_redecides_a_recorded_call_under_another_bundle() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .audit_settings("store_policy_input = true")
        .start()
        .await;
    let response = host.transform("alice", "x", "upper").await;
    output(&response);
    let config = host.config_path.to_str().unwrap();

    let same = warden_cli(&[
        "--config",
        config,
        "audit",
        "replay",
        &response.call_id,
        "--policy",
        repo().join("policies").to_str().unwrap(),
    ]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(report["differs"], false);

    let strict = tempfile::tempdir().unwrap();
    copy_bundle(strict.path());
    std::fs::write(
        strict.path().join("data.json"),
        r#"{"roles": {"analyst": {"tools": ["files.*"]}}, "fetch": {"allowed_hosts": []}}"#,
    )
    .unwrap();
    std::fs::remove_file(strict.path().join("warden_test.rego")).unwrap();
    let differs = warden_cli(&[
        "--config",
        config,
        "audit",
        "replay",
        &response.call_id,
        "--policy",
        strict.path().to_str().unwrap(),
    ]);
    assert_eq!(differs.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&differs.stdout).unwrap();
    assert_eq!(report["recorded"]["decision"], "allow");
    assert_eq!(report["replayed"]["decision"], "deny");
    assert_eq!(
        report["replayed"]["reasons"],
        json!([r#"no role of principal "alice" grants tool "text.transform""#])
    );
}

#[tokio::test]
async fn replay_explains_when_the_input_was_not_stored() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let response = host.transform("alice", "x", "upper").await;
    let out = warden_cli(&[
        "--config",
        host.config_path.to_str().unwrap(),
        "audit",
        "replay",
        &response.call_id,
        "--policy",
        "policies",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store_policy_input = true"));
}

#[tokio::test]
async fn a_broken_shadow_bundle_does_not_hold_back_the_active_one() {
    let active = tempfile::tempdir().unwrap();
    let candidate = tempfile::tempdir().unwrap();
    std::fs::write(active.path().join("authz.rego"), crate::harness::ALLOW_ALL).unwrap();
    std::fs::write(
        candidate.path().join("authz.rego"),
        crate::harness::ALLOW_ALL,
    )
    .unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy_dir(active.path())
        .policy_settings(&format!(
            "shadow_dir = {}\nreload_interval_ms = 50",
            crate::harness::toml_path(candidate.path())
        ))
        .start()
        .await;
    let server = crate::harness::Server::start(&host).await;
    let invoke = || async {
        crate::harness::http(
            &server.addr,
            "POST",
            "/v1/tools/text.transform/invoke",
            Some(&crate::harness::token("alice")),
            r#"{"args": {"text": "x", "op": "upper"}}"#,
        )
        .await
        .expect("warden serve answers")
    };
    assert_eq!(invoke().await.0, 200);

    // The candidate breaks, then the active bundle changes.
    std::fs::write(
        candidate.path().join("broken.rego"),
        "package warden.authz\n\nallow if {\n",
    )
    .unwrap();
    std::fs::write(
        active.path().join("authz.rego"),
        "package warden.authz\n\ndecision := {\"allow\": false, \"reasons\": [\"lockdown\"]}\n",
    )
    .unwrap();
    // The serving process's watcher takes the active change regardless.
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..200 {
        last = invoke().await;
        if last.0 == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last.0, 403, "{}", last.1);
    assert_eq!(
        last.1["error"]["reasons"],
        json!(["lockdown"]),
        "{}",
        last.1
    );

    // In process: the active bundle reloads, the shadow is refused by name
    // and its previous bundle stays.
    let shadow_before = host.kernel.shadow_policy().unwrap().hash().to_string();
    assert!(host.kernel.reload_policy().unwrap().is_some());
    let e = host.kernel.reload_shadow().unwrap_err().to_string();
    assert!(e.contains("broken.rego"), "{e}");
    assert_eq!(host.kernel.shadow_policy().unwrap().hash(), shadow_before);
}

/// Allows every call with a reason; withholds the output of `reverse`.
const TWO_STAGE_POLICY: &str = r#"package warden.authz

decision := {"allow": true, "reasons": ["call: fine"]}

output_decision := {"allow": false, "reasons": ["output: withheld"]} if input.args.op == "reverse"
else := {"allow": true, "reasons": ["output: fine"]}
"#;

#[tokio::test]
async fn records_keep_each_stage_decision_and_replay_compares_the_call_stage() {
    let bundle = tempfile::tempdir().unwrap();
    std::fs::write(bundle.path().join("authz.rego"), TWO_STAGE_POLICY).unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy_dir(bundle.path())
        .audit_settings("store_policy_input = true")
        .start()
        .await;
    let stage = |stage: &str, decision: &str, reason: &str| warden::audit::StageDecision {
        stage: stage.into(),
        decision: decision.into(),
        reasons: vec![reason.into()],
    };
    let allowed = host.transform("alice", "x", "upper").await;
    output(&allowed);
    let withheld = host.transform("alice", "x", "reverse").await;
    error(&withheld, ErrorCode::PolicyDenied);
    let allowed_record = host.record(&allowed.call_id).await.record;
    assert_eq!(
        allowed_record.decisions,
        vec![
            stage("call", "allow", "call: fine"),
            stage("output", "allow", "output: fine")
        ]
    );
    let withheld_record = host.record(&withheld.call_id).await.record;
    assert_eq!(withheld_record.decision, "deny");
    assert_eq!(
        withheld_record.decisions,
        vec![
            stage("call", "allow", "call: fine"),
            stage("output", "deny", "output: withheld")
        ]
    );

    // Replaying under the same bundle re-decides the call stage and finds
    // it unchanged, whatever the output stage said.
    for call_id in [&allowed.call_id, &withheld.call_id] {
        let replay = warden_cli(&[
            "--config",
            host.config_path.to_str().unwrap(),
            "audit",
            "replay",
            call_id,
            "--policy",
            bundle.path().to_str().unwrap(),
        ]);
        let report: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
        assert_eq!(report["differs"], false, "{report}");
        assert_eq!(report["recorded"]["decision"], "allow", "{report}");
        assert_eq!(report["recorded"]["reasons"], json!(["call: fine"]));
        assert_eq!(replay.status.code(), Some(0));
    }
}
