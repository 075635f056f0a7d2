//! The pipeline's outcomes and their audit records, on both stores.

use crate::fixtures;
use serde_json::json;
use warden::ErrorCode;
use warden::digest::sha256_hex;
use warden::kernel::canonical_json;

use crate::harness::{ALLOW_ALL, Harness, Store, TestServer, error, output};

async fn allowed_call_is_answered_and_fully_audited(store: Store) {
    let host = Harness::new(store)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let args = json!({"text": "Hello", "op": "upper"});
    let response = host.call("alice", "text.transform", args.clone()).await;
    assert_eq!(output(&response), &json!({"text": "HELLO"}));

    let stored = host.record(&response.call_id).await;
    let r = &stored.record;
    assert_eq!(r.principal, "alice");
    assert_eq!(r.tenant, "acme");
    assert_eq!(r.session, None);
    assert_eq!(r.tool, "text.transform");
    assert_eq!(r.plugin.as_deref(), Some("text"));
    let tool = host.kernel.registry().tool("text.transform").unwrap();
    assert_eq!(r.plugin_sha256.as_deref(), tool.sha256());
    assert_eq!(r.plugin_sha256.as_ref().map(String::len), Some(64));
    assert_eq!(r.policy_hash, host.kernel.policy().hash());
    assert_eq!(r.decision, "allow");
    assert_eq!(r.outcome, "ok");
    assert_eq!(r.error, None);
    assert_eq!(r.args_digest, sha256_hex(canonical_json(&args).as_bytes()));
    let expected_output = canonical_json(&json!({"text": "HELLO"}));
    assert_eq!(
        r.output_digest.as_deref(),
        Some(sha256_hex(expected_output.as_bytes()).as_str())
    );
    assert!(r.duration_us > 0);
    assert_eq!(stored.seq, 0);
    assert_eq!(stored.prev_hash, warden::audit::GENESIS_HASH);

    let second = host
        .call("alice", "text.stats", json!({"text": "a b\nc"}))
        .await;
    assert_eq!(
        output(&second),
        &json!({"chars": 5, "words": 3, "lines": 2})
    );
    let second = host.record(&second.call_id).await;
    assert_eq!(second.seq, 1);
    assert_eq!(second.prev_hash, stored.hash);

    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(report.records, 2);
}

#[tokio::test]
async fn allowed_call_sqlite() {
    allowed_call_is_answered_and_fully_audited(Store::Sqlite).await;
}

#[tokio::test]
async fn allowed_call_postgres() {
    allowed_call_is_answered_and_fully_audited(Store::Postgres).await;
}

/// The fetch tool has a side effect we can observe: a request on a local server.
/// A denial must leave that server untouched.
async fn denied_call_returns_reasons_and_the_tool_never_runs(store: Store) {
    let server = TestServer::start("hello from the test server").await;
    let host = Harness::new(store)
        .plugin(fixtures::FETCH, &server.grant())
        .start()
        .await;
    let url = format!("{}/page", server.origin());

    // alice is an analyst: no role of hers grants fetch.
    let denied = host.call("alice", "fetch.get", json!({"url": url})).await;
    let denial = error(&denied, ErrorCode::PolicyDenied);
    assert_eq!(
        denial.reasons,
        vec![r#"no role of principal "alice" grants tool "fetch.get""#]
    );
    // bob may fetch, but not from a host off the allow-list.
    let off_list = host
        .call("bob", "fetch.get", json!({"url": "http://203.0.113.9/"}))
        .await;
    let e = error(&off_list, ErrorCode::PolicyDenied);
    assert_eq!(
        e.reasons,
        vec![r#"host "203.0.113.9" is not on the fetch allow-list"#]
    );
    assert_eq!(server.hits(), 0, "a denied call must not run the tool");

    let record = host.record(&denied.call_id).await.record;
    assert_eq!(record.decision, "deny");
    assert_eq!(record.outcome, "policy-denied");
    assert_eq!(record.output_digest, None);
    assert_eq!(record.reasons, denial.reasons);

    // The same tool, allowed, does reach the server: the denial above was the policy's doing.
    let allowed = host.call("bob", "fetch.get", json!({"url": url})).await;
    assert_eq!(output(&allowed)["body"], "hello from the test server");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn denied_call_sqlite() {
    denied_call_returns_reasons_and_the_tool_never_runs(Store::Sqlite).await;
}

#[tokio::test]
async fn denied_call_postgres() {
    denied_call_returns_reasons_and_the_tool_never_runs(Store::Postgres).await;
}

#[tokio::test]
async fn schema_violations_name_the_json_path_and_are_audited() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let cases = [
        (json!({"text": "x", "op": "shout"}), "at /op:"),
        (json!({"text": 42, "op": "upper"}), "at /text:"),
        (json!({"text": "x"}), "at /: \"op\" is a required property"),
        (json!({"text": "x", "op": "upper", "extra": 1}), "at /:"),
        (json!("not an object"), "at /:"),
    ];
    for (args, expected) in cases {
        let response = host.call("alice", "text.transform", args.clone()).await;
        let e = error(&response, ErrorCode::InvalidArgs);
        assert!(e.message.contains(expected), "{args}: {}", e.message);
        let record = host.record(&response.call_id).await.record;
        assert_eq!(record.outcome, "invalid-args");
        assert_eq!(
            record.decision, "allow",
            "policy decides before the arguments are validated"
        );
        assert_eq!(record.error.as_deref(), Some(e.message.as_str()));
    }
}

#[tokio::test]
async fn unknown_tools_are_refused_and_audited() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let response = host.call("alice", "text.nope", json!({})).await;
    let e = error(&response, ErrorCode::UnknownTool);
    assert!(e.message.contains("text.nope"));
    let record = host.record(&response.call_id).await.record;
    assert_eq!(record.outcome, "unknown-tool");
    assert_eq!(record.plugin, None);
}

#[tokio::test]
async fn a_policy_that_cannot_decide_denies_the_call() {
    let broken_policies = [
        // Decision of the wrong shape.
        "package warden.authz\n\ndecision := \"yes\"\n",
        // Decision undefined for this input.
        "package warden.authz\n\ndecision := {\"allow\": true, \"reasons\": []} if input.principal.id == \"nobody-at-all\"\n",
        // A runtime error inside the rule (division by zero is undefined; a type error is not).
        "package warden.authz\n\ndecision := {\"allow\": 1 + \"x\", \"reasons\": []}\n",
    ];
    for policy in broken_policies {
        let host = Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .policy(policy)
            .start()
            .await;
        let response = host.transform("root", "x", "upper").await;
        let e = error(&response, ErrorCode::PolicyError);
        assert!(
            e.message.contains("data.warden.authz.decision"),
            "{}",
            e.message
        );
        let record = host.record(&response.call_id).await.record;
        assert_eq!(record.decision, "deny");
        assert_eq!(record.outcome, "policy-error");
    }
}

#[tokio::test]
async fn a_call_whose_audit_record_cannot_be_written_is_denied() {
    let server = TestServer::start("should never be returned").await;
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::FETCH, &server.grant())
        .policy(ALLOW_ALL)
        .start()
        .await;
    let url = format!("{}/", server.origin());
    let before = host.call("bob", "fetch.get", json!({"url": url})).await;
    output(&before);

    host.db.as_ref().unwrap().drop_database().await;
    let response = host.call("bob", "fetch.get", json!({"url": url})).await;
    let e = error(&response, ErrorCode::AuditUnavailable);
    assert!(e.message.contains("audit"), "{}", e.message);
}

/// The pipeline's two halves, as a streaming face uses them: a refused call
/// is recorded at once; an admitted one stays open, unrecorded, until it is
/// finished, whatever happens in between.
#[tokio::test]
async fn an_admitted_call_stays_open_until_it_is_finished() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let request = |principal: &str, args: serde_json::Value| warden::CallRequest {
        principal: host.kernel.principals().by_id(principal).unwrap(),
        tool: "text.transform".into(),
        args,
        session: None,
        contract: None,
        trace: None,
    };

    let refused = host
        .kernel
        .admit(request("nobody", json!({"text": "x", "op": "upper"})))
        .await
        .expect_err("nobody is denied before anything runs");
    error(&refused, ErrorCode::PolicyDenied);
    assert_eq!(host.records().await.len(), 1);

    let mut admitted = host
        .kernel
        .admit(request("alice", json!({"text": "open", "op": "upper"})))
        .await
        .expect("alice may transform");
    let call_id = admitted.call_id().to_string();
    let ran = host.kernel.run(&mut admitted).await;
    // Ran, but not finished: no record yet, so nothing may be answered.
    assert_eq!(host.records().await.len(), 1);
    let response = host.kernel.finish(admitted, ran).await;
    assert_eq!(response.call_id, call_id);
    assert_eq!(output(&response), &json!({"text": "OPEN"}));
    let record = host.record(&call_id).await.record;
    assert_eq!(
        (record.decision.as_str(), record.outcome.as_str()),
        ("allow", "ok")
    );
    let stages: Vec<&str> = record.decisions.iter().map(|d| d.stage.as_str()).collect();
    assert_eq!(stages, ["call", "output"]);

    // A backend failure handed to the after-run half is recorded as such.
    let admitted = host
        .kernel
        .admit(request("alice", json!({"text": "x", "op": "upper"})))
        .await
        .unwrap();
    let failed = host
        .kernel
        .finish(
            admitted,
            Err(warden::CallError::new(
                ErrorCode::Timeout,
                "the stream was cut",
            )),
        )
        .await;
    error(&failed, ErrorCode::Timeout);
    assert_eq!(host.record(&failed.call_id).await.record.outcome, "timeout");
}
