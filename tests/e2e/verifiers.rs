//! Verifiers: sandboxed checks whose verdicts policy acts on. The
//! `hostile-verifier` fixture reports honest findings on command and
//! misbehaves on command (traps, spins, lies about locations, floods); every
//! misbehaviour must be an `error` verdict that the default bundle denies on,
//! never a pass, and the host keeps serving.

use serde_json::{Value, json};
use warden::ErrorCode;

use crate::fixtures;
use crate::harness::{ALLOW_ALL, Harness, Host, Store, error, manifest, output, toml_path};

/// `[verifiers.NAME]` for the hostile fixture, with extra lines; its
/// `prepare` behaves.
fn hostile_verifier(harness: Harness, name: &str, lines: &str) -> Harness {
    hostile_prepare(harness, name, "none", lines)
}

/// The hostile fixture whose `prepare` does `prepare` (`trap`, `spin`, or
/// anything else: nothing).
fn hostile_prepare(harness: Harness, name: &str, prepare: &str, lines: &str) -> Harness {
    harness.extra_config(&format!(
        "[verifiers.{name}]\nmanifest = {}\ngrants = {{ env = {{ HOSTILE_PREPARE = \"{prepare}\" }} }}\n{lines}\n",
        toml_path(&manifest(fixtures::HOSTILE_VERIFIER))
    ))
}

/// Allows every call and asks for the findings of every verifier to be
/// redacted, at both stages.
const REDACT_FINDINGS: &str = r#"package warden.authz

decision := {"allow": true, "reasons": [], "obligations": {"redact_findings": ["*"]}}

output_decision := {"allow": true, "reasons": [], "obligations": {"redact_findings": ["*"]}}
"#;

async fn transform(host: &Host, text: &str) -> warden::kernel::CallResponse {
    host.call(
        "alice",
        "text.transform",
        json!({"text": text, "op": "lower"}),
    )
    .await
}

#[tokio::test]
async fn findings_are_redacted_before_the_tool_runs_and_recorded_as_digests() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .policy(REDACT_FINDINGS)
            .audit_settings("store_policy_input = true"),
        "words",
        "stages = [\"input\"]\ntargets = [\"text.*\"]",
    )
    .start()
    .await;
    let response = transform(&host, "find:hunter2").await;
    // The tool ran on the redacted arguments.
    assert_eq!(output(&response), &json!({"text": "find:[word]"}));
    let record = host.record(&response.call_id).await.record;
    assert_eq!(record.verdicts.len(), 1, "{:?}", record.verdicts);
    let verdict = &record.verdicts[0];
    assert_eq!(
        (verdict.stage.as_str(), verdict.verifier.as_str()),
        ("input", "words")
    );
    assert_eq!(verdict.verdict, "findings");
    let finding = &verdict.findings[0];
    assert_eq!(finding.pointer.as_deref(), Some("/text"));
    assert_eq!((finding.start, finding.end), (Some(5), Some(12)));
    assert_eq!(
        finding.digest.as_deref(),
        Some(warden::digest::sha256_hex(b"hunter2").as_str())
    );
    // Neither the record nor its stored policy input holds the match.
    let stored = serde_json::to_string(&record).unwrap();
    assert!(!stored.contains("hunter2"), "{stored}");
    let input: Value = serde_json::from_str(record.policy_input.as_deref().unwrap()).unwrap();
    assert_eq!(input["verdicts"]["words"]["kinds"], json!(["word"]));
}

#[tokio::test]
async fn an_output_finding_reaches_the_caller_redacted() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .policy(REDACT_FINDINGS),
        "words",
        "stages = [\"output\"]",
    )
    .start()
    .await;
    let response = transform(&host, "find:abc").await;
    assert_eq!(output(&response), &json!({"text": "find:[WORD]"}));
    let record = host.record(&response.call_id).await.record;
    assert_eq!(record.verdicts[0].stage, "output");
    assert_eq!(
        record
            .decisions
            .iter()
            .map(|d| d.stage.as_str())
            .collect::<Vec<_>>(),
        ["call", "output"]
    );
}

#[tokio::test]
async fn every_misbehaving_verifier_is_an_error_verdict_the_default_bundle_denies_on() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite).plugin(fixtures::TEXT, "{}"),
        "hostile",
        "stages = [\"input\"]",
    )
    .start()
    .await;
    for (command, why) in [
        ("trap", "trapped"),
        ("spin", "time limit"),
        ("fail", "refuses on purpose"),
        ("outside", "not within the string"),
        ("bad-kind", "must be 1 to 64 characters"),
        ("bad-score", "score must be between 0 and 1"),
        ("flood", "at most 1000"),
        ("bad-redaction", "finding 7, which does not exist"),
    ] {
        let response = transform(&host, command).await;
        let denied = error(&response, ErrorCode::PolicyDenied);
        assert!(
            denied.reasons[0].starts_with("verifier \"hostile\" could not check the arguments"),
            "{command}: {denied}"
        );
        let record = host.record(&response.call_id).await.record;
        let verdict = &record.verdicts[0];
        assert_eq!(verdict.verdict, "error", "{command}");
        let recorded_error = verdict.error.as_deref().unwrap_or_default();
        assert!(recorded_error.contains(why), "{command}: {recorded_error}");
        // The host keeps serving.
        output(&transform(&host, "clean").await);
    }
}

#[tokio::test]
async fn an_advisory_verifier_that_fails_does_not_stop_the_call() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite).plugin(fixtures::TEXT, "{}"),
        "hostile",
        "stages = [\"input\"]\nadvisory = true",
    )
    .start()
    .await;
    let response = transform(&host, "trap").await;
    assert_eq!(output(&response), &json!({"text": "trap"}));
    let record = host.record(&response.call_id).await.record;
    assert_eq!(record.verdicts[0].verdict, "error");
    assert!(record.verdicts[0].advisory);
}

#[tokio::test]
async fn a_verifier_cannot_echo_the_match_or_inflate_a_replacement() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .policy(REDACT_FINDINGS),
        "hostile",
        "stages = [\"output\"]",
    )
    .start()
    .await;
    let leaked = transform(&host, "leak").await;
    let record = host.record(&leaked.call_id).await.record;
    assert_eq!(
        record.verdicts[0].findings[0].message,
        "the secret is [match]!"
    );
    // The match is replaced by the default mask: `leak` is gone from the output.
    assert_eq!(output(&leaked), &json!({"text": "[REDACTED:leak]"}));

    let inflated = transform(&host, "huge-replacement").await;
    let text = output(&inflated)["text"].as_str().unwrap().to_string();
    assert_eq!(text.len(), 256, "{text}");
    assert!(text.starts_with("RRRR"), "{text}");
}

#[tokio::test]
async fn a_verifier_sees_the_subject_and_reaches_nothing_it_was_not_granted() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .policy(ALLOW_ALL),
        "hostile",
        "stages = [\"input\"]",
    )
    .start()
    .await;
    let session = host.open_session("alice").await;
    let labelled = host
        .call_in(
            "alice",
            Some(&session),
            "text.transform",
            json!({"text": "subject", "op": "upper"}),
        )
        .await;
    let record = host.record(&labelled.call_id).await.record;
    assert_eq!(
        record.verdicts[0].findings[0].message,
        "tenant=acme labels= target=text.transform sources=0 contracts=0"
    );
    let reach = transform(&host, "reach").await;
    let record = host.record(&reach.call_id).await.record;
    let finding = &record.verdicts[0].findings[0];
    assert_eq!(finding.kind, "held", "it reached: {}", finding.message);
}

/// The session's earlier outputs go only to the verifier the operator lets
/// see them; the other one, on the same call, sees none. Contracts go to
/// both, and only on the stage they were declared for.
#[tokio::test]
async fn sources_reach_only_the_verifier_granted_them() {
    sources_reach_only_the_verifier_granted_them_on(Store::Sqlite).await;
}

/// The same with the session's sources in PostgreSQL.
#[tokio::test]
async fn sources_kept_in_the_database_reach_only_the_verifier_granted_them() {
    sources_reach_only_the_verifier_granted_them_on(Store::Postgres).await;
}

async fn sources_reach_only_the_verifier_granted_them_on(store: Store) {
    let contracts = tempfile::tempdir().unwrap();
    let contract = contracts.path().join("any.json");
    std::fs::write(&contract, r#"{"rules": []}"#).unwrap();
    let host = hostile_verifier(
        hostile_verifier(
            Harness::new(store)
                .plugin(fixtures::TEXT, "{}")
                .policy(ALLOW_ALL)
                .extra_config(&format!(
                    "[contracts.\"text.*\"]\ninput = {}\n",
                    toml_path(&contract)
                )),
            "sees",
            "stages = [\"input\"]\nsources = true",
        ),
        "blind",
        "stages = [\"input\"]",
    )
    .start()
    .await;
    let session = host.open_session("alice").await;
    let other = host.open_session("alice").await;
    let call = async |session: &str, text: &str| {
        host.call_in(
            "alice",
            Some(session),
            "text.transform",
            json!({"text": text, "op": "lower"}),
        )
        .await
    };
    for text in ["first", "second"] {
        let response = call(&session, text).await;
        output(&response);
    }
    let seen = |record: &warden::audit::AuditRecord, name: &str| {
        let verdict = record.verdicts.iter().find(|v| v.verifier == name).unwrap();
        verdict.findings[0].message.clone()
    };
    let probe = call(&session, "subject").await;
    let record = host.record(&probe.call_id).await.record;
    assert!(
        seen(&record, "sees").ends_with("sources=2 contracts=1"),
        "{record:?}"
    );
    assert!(
        seen(&record, "blind").ends_with("sources=0 contracts=1"),
        "{record:?}"
    );
    // Another session of the same principal has no sources of its own.
    let probe = call(&other, "subject").await;
    let record = host.record(&probe.call_id).await.record;
    assert!(
        seen(&record, "sees").ends_with("sources=0 contracts=1"),
        "{record:?}"
    );
}

/// A contract that is not one refuses the config, naming the entry and
/// where in the file.
#[tokio::test]
async fn a_malformed_contract_is_refused_at_load() {
    let contracts = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("{not json", "is not JSON"),
        (
            r#"{"rules": [{"compare": {"left": "/a", "op": "~", "right": "/b"}}]}"#,
            "/rules/0",
        ),
        (
            r#"{"schema": {"$ref": "https://elsewhere.test/s.json"}}"#,
            "at /schema",
        ),
        (r#"{"rules": [], "extra": 1}"#, "at /"),
    ] {
        let file = contracts.path().join("bad.json");
        std::fs::write(&file, text).unwrap();
        let (refused, _dir) = Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .extra_config(&format!(
                "[contracts.\"text.*\"]\noutput = {}\n",
                toml_path(&file)
            ))
            .try_start()
            .await
            .err()
            .expect("a malformed contract must be refused");
        let message = refused.to_string();
        assert!(
            message.contains(r#"contracts."text.*".output"#) && message.contains(expected),
            "{text}: {message}"
        );
    }
}

#[tokio::test]
async fn two_verifiers_run_side_by_side_and_never_see_each_other() {
    let host = hostile_verifier(
        hostile_verifier(
            Harness::new(Store::Sqlite)
                .plugin(fixtures::TEXT, "{}")
                .policy(REDACT_FINDINGS),
            "first",
            "stages = [\"input\"]",
        ),
        "second",
        "stages = [\"input\"]\ntargets = [\"nothing.*\", \"text.transform\"]",
    )
    .start()
    .await;
    let response = transform(&host, "find:xyz").await;
    // Both found the same word, each on its own; the overlapping
    // replacements leave nothing of it.
    assert_eq!(output(&response), &json!({"text": "find:[word]"}));
    let record = host.record(&response.call_id).await.record;
    let names: Vec<&str> = record
        .verdicts
        .iter()
        .map(|v| v.verifier.as_str())
        .collect();
    assert_eq!(names, ["first", "second"]);
    assert!(record.verdicts.iter().all(|v| v.findings.len() == 1));
}

#[tokio::test]
async fn output_verdicts_without_an_output_decision_refuse_the_output() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .policy(ALLOW_ALL),
        "words",
        "stages = [\"output\"]",
    )
    .start()
    .await;
    let response = transform(&host, "find:abc").await;
    let refused = error(&response, ErrorCode::PolicyError);
    assert!(
        refused.message.contains("no `output_decision`"),
        "{refused}"
    );
}

#[tokio::test]
async fn verifiers_apply_only_to_their_targets_and_stages() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite).plugin(fixtures::TEXT, "{}"),
        "hostile",
        "stages = [\"input\"]\ntargets = [\"text.stats\"]",
    )
    .start()
    .await;
    // `trap` would deny the call if the verifier ran on it.
    let response = transform(&host, "trap").await;
    output(&response);
    assert!(
        host.record(&response.call_id)
            .await
            .record
            .verdicts
            .is_empty()
    );
    let stats = host
        .call("alice", "text.stats", json!({"text": "trap"}))
        .await;
    error(&stats, ErrorCode::PolicyDenied);
}

#[tokio::test]
async fn misconfigured_verifiers_are_refused_at_load_naming_the_problem() {
    let cases = [
        (
            format!(
                "[verifiers.v]\nmanifest = {}\n",
                toml_path(&manifest(fixtures::TEXT))
            ),
            "`kind` is \"tool\", but it is configured as a verifier",
        ),
        (
            format!(
                "[verifiers.v]\nmanifest = {}\nstages = []\n",
                toml_path(&manifest(fixtures::HOSTILE_VERIFIER))
            ),
            "verifiers.v.stages",
        ),
        (
            format!(
                "[verifiers.v]\nmanifest = {}\ntargets = [\"\"]\n",
                toml_path(&manifest(fixtures::HOSTILE_VERIFIER))
            ),
            "verifiers.v.targets[0]",
        ),
        (
            format!(
                "[verifiers.v]\nmanifest = {}\nstage = [\"input\"]\n",
                toml_path(&manifest(fixtures::HOSTILE_VERIFIER))
            ),
            "unknown field `stage`",
        ),
    ];
    for (config, expected) in cases {
        let started = Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .extra_config(&config)
            .try_start()
            .await;
        let Err((e, _dir)) = started else {
            panic!("{config} loaded");
        };
        assert!(e.to_string().contains(expected), "{config}: {e}");
    }
    // A verifier's manifest under [plugins] is refused too.
    let started = Harness::new(Store::Sqlite)
        .plugin(fixtures::HOSTILE_VERIFIER, "{}")
        .try_start()
        .await;
    let Err((e, _dir)) = started else {
        panic!("a verifier loaded as a plugin");
    };
    assert!(
        e.to_string()
            .contains("`kind` is \"verifier\", but it is configured as a tool"),
        "{e}"
    );
}

#[tokio::test]
async fn a_verifier_whose_prepare_traps_or_spins_is_refused_at_load() {
    for (prepare, expected) in [
        ("trap", "pre-initialization failed: plugin `v` trapped"),
        (
            "spin",
            "pre-initialization failed: its `prepare` did not finish within 5 s",
        ),
    ] {
        let started = hostile_prepare(
            Harness::new(Store::Sqlite).plugin(fixtures::TEXT, "{}"),
            "v",
            prepare,
            "",
        )
        .try_start()
        .await;
        let Err((e, _dir)) = started else {
            panic!("a verifier whose prepare does {prepare} loaded");
        };
        let message = e.to_string();
        assert!(message.starts_with("verifier `v`: "), "{message}");
        assert!(message.contains(expected), "{message}");
    }
}

#[tokio::test]
async fn warden_verify_runs_one_verifier_from_the_shell() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite).plugin(fixtures::TEXT, "{}"),
        "words",
        "",
    )
    .start()
    .await;
    let document = host.dir.path().join("doc.json");
    std::fs::write(&document, r#"{"note": "find:swordfish"}"#).unwrap();
    let doc = document.to_str().unwrap();
    let found = host.cli(&["verify", "--verifier", "words", doc]);
    assert_eq!(found.status.code(), Some(1), "{found:?}");
    let verdict: Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(verdict["verdict"], "findings");
    assert_eq!(verdict["findings"][0]["pointer"], "/note");
    assert!(!String::from_utf8_lossy(&found.stdout).contains("swordfish"));

    let redacted = host.cli(&["verify", "--verifier", "words", "--redact", doc]);
    let redacted: Value = serde_json::from_slice(&redacted.stdout).unwrap();
    assert_eq!(redacted, json!({"note": "find:[WORD]"}));

    std::fs::write(&document, "clean").unwrap();
    let clean = host.cli(&["verify", "--verifier", "words", doc]);
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
    std::fs::write(&document, "trap").unwrap();
    let failed = host.cli(&["verify", "--verifier", "words", doc]);
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");

    let unknown = host.cli(&["verify", "--verifier", "nope", doc]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no `[verifiers.nope]`"));
}

#[tokio::test]
async fn replay_re_decides_from_the_recorded_verdicts() {
    let host = hostile_verifier(
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .audit_settings("store_policy_input = true"),
        "hostile",
        "stages = [\"input\"]",
    )
    .start()
    .await;
    let denied = transform(&host, "fail").await;
    error(&denied, ErrorCode::PolicyDenied);
    let policies = crate::harness::repo().join("policies");
    let replay = host.cli(&[
        "audit",
        "replay",
        &denied.call_id,
        "--policy",
        policies.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(report["differs"], false, "{report}");
    assert_eq!(report["replayed"]["decision"], "deny", "{report}");
}

#[tokio::test]
async fn verdicts_are_hashed_into_the_chain_on_both_stores() {
    for store in [Store::Sqlite, Store::Postgres] {
        let host = hostile_verifier(
            Harness::new(store)
                .plugin(fixtures::TEXT, "{}")
                .policy(REDACT_FINDINGS),
            "words",
            "",
        )
        .start()
        .await;
        for text in ["find:alpha", "clean", "find:ünïcødé", "fail"] {
            transform(&host, text).await;
        }
        let records = host.records().await;
        assert!(records.iter().any(|r| !r.record.verdicts.is_empty()));
        let report = warden::audit::verify(host.kernel.audit().store())
            .await
            .unwrap();
        assert_eq!(report.failure, None, "{store:?}");
        let verify = host.cli(&["audit", "verify"]);
        assert_eq!(verify.status.code(), Some(0), "{verify:?}");
        if store == Store::Postgres {
            // Editing a recorded finding breaks the chain.
            let db = host.postgres().await;
            sqlx::query(
                "UPDATE audit_records SET verdicts = \
                 replace(verdicts::text, 'found the word', 'found nothing')::jsonb \
                 WHERE verdicts IS NOT NULL",
            )
            .execute(&db)
            .await
            .unwrap();
            let verify = host.cli(&["audit", "verify"]);
            assert_eq!(verify.status.code(), Some(1), "{verify:?}");
        }
    }
}
