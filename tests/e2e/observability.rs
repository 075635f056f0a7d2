//! What an operator sees from outside: Prometheus metrics at `/metrics`,
//! whose labels no caller can grow.

use crate::fixtures;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use crate::harness::{Harness, Store, token};

async fn get(app: &axum::Router, path: &str, who: &str) -> (StatusCode, String, String) {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {}", token(who)))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_target_decision_and_outcome_and_time_each_stage() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    for i in 0..3 {
        crate::harness::output(&host.transform("alice", &format!("{i}"), "upper").await);
    }
    // Denied by the default policy: a principal with no role.
    let denied = host.transform("nobody", "x", "upper").await;
    crate::harness::error(&denied, warden::ErrorCode::PolicyDenied);
    // Names a caller makes up are never labels.
    for name in [
        "made.up",
        "text.transform\"} 1\nwarden_calls_total{x=\"",
        "ünïcode.tool",
    ] {
        let unknown = host.call("alice", name, json!({})).await;
        crate::harness::error(&unknown, warden::ErrorCode::UnknownTool);
    }
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());

    let (status, content_type, text) = get(&app, "/metrics", "prom").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let allowed = r#"warden_calls_total{target="text.transform",decision="allow",outcome="ok"}"#;
    assert_eq!(sample(&text, allowed), Some(3.0), "{text}");
    let refused =
        r#"warden_calls_total{target="text.transform",decision="deny",outcome="policy-denied"}"#;
    assert_eq!(sample(&text, refused), Some(1.0), "{text}");
    let unknown =
        r#"warden_calls_total{target="(unknown)",decision="none",outcome="unknown-tool"}"#;
    assert_eq!(sample(&text, unknown), Some(3.0), "{text}");
    assert!(
        !text.contains("made.up") && !text.contains("nicode"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("warden_calls_total{"))
            .count(),
        3,
        "{text}"
    );
    assert_eq!(
        sample(&text, "warden_call_duration_seconds_count"),
        Some(7.0)
    );
    // Every call that was resolved took its session context and a call
    // decision; the three that ran, the backend and an output decision.
    let stage = |name: &str| {
        sample(
            &text,
            &format!("warden_stage_duration_seconds_count{{stage=\"{name}\"}}"),
        )
        .unwrap_or_else(|| panic!("no {name} stage: {text}"))
    };
    assert_eq!(stage("context"), 4.0);
    assert_eq!(stage("decide"), 4.0 + 3.0);
    assert_eq!(stage("run"), 3.0);
    assert_eq!(stage("record"), 7.0);
    assert_eq!(stage("verify"), 0.0);
    // The writer's side: every record committed, in batches.
    let batches = sample(&text, "warden_audit_batch_size_count").unwrap();
    assert!(batches >= 1.0, "{text}");
    assert_eq!(
        sample(&text, "warden_audit_batch_size_sum"),
        Some(7.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "warden_audit_commit_seconds_count"),
        Some(batches)
    );
    assert_eq!(
        sample(&text, "warden_audit_spooled_records_total"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "warden_calls_in_flight"), Some(0.0));
    assert_eq!(sample(&text, "warden_audit_queue_depth"), Some(0.0));

    // Auditors may read them too; anyone else is refused.
    assert_eq!(get(&app, "/metrics", "audra").await.0, StatusCode::OK);
    let (status, _, body) = get(&app, "/metrics", "alice").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("`metrics`"), "{body}");
}
