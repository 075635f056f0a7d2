//! Hostile descriptors and oversized text: schema bombs are refused at load,
//! validation never runs for a principal policy denies, and every string a
//! plugin, policy or caller produces is bounded before it is answered or
//! stored.

use crate::fixtures;
use std::sync::Arc;

use serde_json::{Value, json};
use tower::ServiceExt;
use warden::ErrorCode;

use crate::harness::{ALLOW_ALL, Harness, Host, Store, error, output, token};

const TOOL: &str = "hostile-describe.echo";

fn grants(mode: &str) -> String {
    format!("{{ env = {{ HOSTILE_MODE = \"{mode}\" }}, memory_mb = 256 }}")
}

async fn refused(mode: &str) -> String {
    match Harness::new(Store::Sqlite)
        .plugin(fixtures::HOSTILE_DESCRIBE, &grants(mode))
        .try_start()
        .await
    {
        Ok(_) => panic!("{mode}: the plugin was loaded"),
        Err((e, _)) => e.to_string(),
    }
}

#[tokio::test]
async fn schema_bombs_are_refused_at_load_naming_the_plugin_and_tool() {
    for (mode, expected) in [
        (
            "anyof-bomb",
            "invalid input schema: expands to more than 10000 subschemas",
        ),
        (
            "oneof-bomb",
            "invalid input schema: expands to more than 10000 subschemas",
        ),
        (
            "allof-bomb",
            "invalid input schema: expands to more than 10000 subschemas",
        ),
        (
            "output-bomb",
            "invalid output schema: expands to more than 10000 subschemas",
        ),
        (
            "nested-bomb",
            "invalid input schema: expands to more than 10000 subschemas",
        ),
        ("remote-ref", "only references inside the schema"),
    ] {
        let message = refused(mode).await;
        assert!(
            message.contains("plugin `hostile-describe`: tool `echo`"),
            "{mode}: {message}"
        );
        assert!(message.contains(expected), "{mode}: {message}");
    }
}

#[tokio::test]
async fn label_floods_and_malformed_labels_are_refused_at_load() {
    let flood = refused("label-flood").await;
    assert!(
        flood.contains("declares 2000 labels; at most 16"),
        "{flood}"
    );
    assert!(
        flood.len() < 1024,
        "the error itself is bounded: {} bytes",
        flood.len()
    );
    let bad = refused("bad-label").await;
    assert!(
        bad.contains("label \"untrusted\\ncontent\\0\" must be"),
        "{bad}"
    );
}

async fn wide_host(policy: &str) -> Host {
    Harness::new(Store::Sqlite)
        .plugin(fixtures::HOSTILE_DESCRIBE, &grants("long-description"))
        .policy(policy)
        .start()
        .await
}

#[tokio::test]
async fn a_denied_principal_costs_no_validation_and_allowed_ones_are_bounded() {
    let host = wide_host(
        "package warden.authz\n\n\
         decision := {\"allow\": true, \"reasons\": []} if input.principal.id == \"root\"\n\
         decision := {\"allow\": false, \"reasons\": [\"not root\"]} if input.principal.id != \"root\"\n",
    )
    .await;
    // Large arguments that would be expensive to validate: policy denies first.
    let heavy =
        json!({"items": (0..20_000).map(|i| format!("v{}", i % 2_000)).collect::<Vec<_>>()});
    let denied = host.call("alice", TOOL, heavy.clone()).await;
    assert_eq!(
        error(&denied, ErrorCode::PolicyDenied).reasons,
        ["not root"]
    );
    assert_eq!(host.record(&denied.call_id).await.record.decision, "deny");

    // Allowed: validated (off the async workers when heavy) and answered.
    let valid = json!({"items": (0..100).map(|i| format!("v{}", i * 7)).collect::<Vec<_>>()});
    assert_eq!(
        output(&host.call("root", TOOL, valid.clone()).await),
        &valid
    );
    let e = host.call("root", TOOL, heavy).await;
    assert!(
        error(&e, ErrorCode::InvalidArgs)
            .message
            .contains("at /items:")
    );
    let mut one_bad = valid;
    one_bad["items"][57] = json!("v2000");
    let e = host.call("root", TOOL, one_bad).await;
    let message = &error(&e, ErrorCode::InvalidArgs).message;
    assert!(message.contains("at /items/57:"), "{message}");

    // The 1 MiB description is cut.
    let description = &host.kernel.registry().tool(TOOL).unwrap().description;
    assert!(description.len() < 4200, "{}", description.len());
    assert!(description.ends_with("more bytes]"));
}

#[tokio::test]
async fn huge_plugin_errors_are_bounded_in_the_response_and_the_record() {
    let host = wide_host(ALLOW_ALL).await;
    let response = host.call("root", TOOL, json!({"fail_mb": 24})).await;
    let e = error(&response, ErrorCode::ToolFailed);
    assert!(e.message.len() <= 4096 + 32, "{} bytes", e.message.len());
    assert!(
        e.message
            .ends_with(&format!("…[{} more bytes]", (24 << 20) - 4096))
    );
    let stored = host.record(&response.call_id).await.record.error.unwrap();
    assert_eq!(&stored, &e.message);
    output(&host.call("root", TOOL, json!({"items": ["v1"]})).await);
}

#[tokio::test]
async fn policy_reasons_quoting_the_caller_are_bounded() {
    let host = wide_host(
        "package warden.authz\n\n\
         decision := {\"allow\": false, \"reasons\": [sprintf(\"bad items %v\", [input.args.items])]} if count(input.args.items) == 1\n\
         decision := {\"allow\": false, \"reasons\": [sprintf(\"reason %d\", [i]) | some i in numbers.range(1, 100)]} if count(input.args.items) == 2\n",
    )
    .await;
    let long = json!({"items": ["x".repeat(1 << 20)]});
    let response = host.call("root", TOOL, long).await;
    let reasons = &error(&response, ErrorCode::PolicyDenied).reasons;
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].len() <= 8192 + 32, "{}", reasons[0].len());
    let record = host.record(&response.call_id).await.record;
    assert_eq!(&record.reasons, reasons);

    let many = host.call("root", TOOL, json!({"items": ["a", "b"]})).await;
    let reasons = &error(&many, ErrorCode::PolicyDenied).reasons;
    assert_eq!(reasons.len(), 16);
    assert_eq!(reasons[15], "…and 85 more reasons");
    assert_eq!(host.record(&many.call_id).await.record.reasons.len(), 16);
}

#[tokio::test]
async fn a_megabyte_tool_name_is_answered_and_stored_cut() {
    let host = wide_host(ALLOW_ALL).await;
    let name = format!("text.{}", "n".repeat(1 << 20));
    let response = host.call("root", &name, json!({})).await;
    let e = error(&response, ErrorCode::UnknownTool);
    assert!(e.message.len() < 400, "{}", e.message.len());
    let stored = host.record(&response.call_id).await.record.tool;
    assert!(stored.len() < 300, "{}", stored.len());

    // Over HTTP, with control characters in the path.
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    let path = format!("/v1/tools/a%00b%0a{}/invoke", "m".repeat(60_000));
    let request = axum::http::Request::post(path)
        .header("authorization", format!("Bearer {}", token("root")))
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 404);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "unknown-tool");
    assert!(body["error"]["message"].as_str().unwrap().len() < 400);
}
