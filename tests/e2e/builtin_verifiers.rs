//! The built-in verifiers under the default bundle, end to end over the HTTP
//! API and MCP: arguments carrying a cloud key are denied before any tool
//! runs, and an output carrying a card number reaches the caller redacted;
//! both audited with digests, never the values.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::fixtures;
use crate::harness::{Harness, Host, Store, token, with_builtin_verifiers};

/// Synthetic values shaped like the real thing (the card passes Luhn); the
/// MCP client script holds the same two.
const CLOUD_KEY: &str = concat!("AKIA", "QZ7RMWT2KX4NB6PD");
const CARD: &str = "4539 1488 0343 6467";

/// The text plugin behind the `secrets` and `pii` verifiers, under the default bundle.
async fn verified_host() -> Host {
    with_builtin_verifiers(
        Harness::new(Store::Sqlite).plugin(fixtures::TEXT, "{}"),
        "[\"input\", \"output\"]",
    )
    .start()
    .await
}

async fn record(kernel: &warden::Kernel, call_id: &str) -> warden::audit::AuditRecord {
    let stored = kernel.audit().store().by_call_id(call_id).await.unwrap();
    stored
        .unwrap_or_else(|| panic!("no record of {call_id}"))
        .record
}

/// What the trail must show of the two calls, whatever the face.
async fn assert_recorded(kernel: &warden::Kernel, key_call: &str, card_call: &str) {
    let key = record(kernel, key_call).await;
    assert_eq!(key.outcome, "policy-denied");
    let secrets = key
        .verdicts
        .iter()
        .find(|v| v.verifier == "secrets")
        .unwrap();
    assert_eq!(secrets.stage, "input");
    assert_eq!(secrets.findings[0].label, "secret");
    assert_eq!(
        secrets.findings[0].digest.as_deref(),
        Some(warden::digest::sha256_hex(CLOUD_KEY.as_bytes()).as_str())
    );
    let card = record(kernel, card_call).await;
    assert_eq!(card.outcome, "ok");
    let pii = card
        .verdicts
        .iter()
        .find(|v| v.verifier == "pii" && v.stage == "output")
        .unwrap();
    assert_eq!(pii.findings[0].kind, "payment-card");
    for record in [&key, &card] {
        let stored = serde_json::to_string(record).unwrap();
        assert!(
            !stored.contains(CLOUD_KEY) && !stored.contains(CARD),
            "{stored}"
        );
    }
}

async fn invoke(app: &axum::Router, args: Value) -> (StatusCode, Value) {
    let request = Request::post("/v1/tools/text.transform/invoke")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", token("alice")))
        .body(Body::from(json!({ "args": args }).to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn over_http_a_cloud_key_is_denied_and_a_card_number_comes_back_redacted() {
    let Host {
        kernel, dir: _dir, ..
    } = verified_host().await;
    let kernel = Arc::new(kernel);
    let app = warden::server::router(Arc::clone(&kernel), &Default::default());
    let (status, key) = invoke(
        &app,
        json!({"text": format!("aws_access_key_id = {CLOUD_KEY}"), "op": "trim"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{key}");
    assert_eq!(key["error"]["code"], "policy-denied");
    let reasons = key["error"]["reasons"].to_string();
    assert!(reasons.contains("found a credential"), "{reasons}");

    let (status, card) = invoke(
        &app,
        json!({"text": format!("paid with card {CARD}"), "op": "trim"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{card}");
    let text = card["output"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("paid with card ") && !text.contains(CARD),
        "{text}"
    );
    assert!(
        text.ends_with("6467"),
        "the default mask keeps the last four: {text}"
    );
    assert_recorded(
        &kernel,
        key["call_id"].as_str().unwrap(),
        card["call_id"].as_str().unwrap(),
    )
    .await;
}

#[tokio::test]
async fn over_mcp_a_cloud_key_is_denied_and_a_card_number_comes_back_redacted() {
    let host = verified_host().await;
    let report = crate::mcp::client_scenario(
        "verified",
        &[
            "stdio",
            env!("CARGO_BIN_EXE_warden"),
            host.config_path.to_str().unwrap(),
            "alice",
        ],
    );
    let key = &report["key"];
    assert_eq!(key["is_error"], true, "{report}");
    assert_eq!(key["structured"]["code"], "policy-denied");
    let card = &report["card"];
    assert_eq!(card["is_error"], false, "{report}");
    let text = card["structured"]["text"].as_str().unwrap();
    assert!(!text.contains(CARD) && text.ends_with("6467"), "{text}");
    // A successful MCP result carries no call id; the trail has both calls.
    let records = host.records().await;
    let card_call = records
        .iter()
        .find(|r| r.record.outcome == "ok")
        .map(|r| r.record.call_id.clone())
        .unwrap();
    assert_recorded(
        &host.kernel,
        key["structured"]["call_id"].as_str().unwrap(),
        &card_call,
    )
    .await;
}
