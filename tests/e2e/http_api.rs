//! The HTTP API, in process through the router.

use crate::fixtures;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::{Harness, Store, token};

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn invoke(tool: &str, bearer: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post(format!("/v1/tools/{tool}/invoke"))
        .header("content-type", "application/json");
    if let Some(t) = bearer {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn http_api_serves_governed_calls_with_stable_errors() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    let alice = token("alice");

    let (status, body) = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));

    let (status, body) = send(&app, Request::get("/v1/tools").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");

    let list = Request::get("/v1/tools")
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, list).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["text.json_pointer", "text.stats", "text.transform"]);
    assert_eq!(
        body["tools"][2]["input_schema"]["required"],
        json!(["text", "op"])
    );

    let args = r#"{"args": {"text": "abc", "op": "reverse"}}"#;
    let (status, body) = send(&app, invoke("text.transform", Some(&alice), args)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["output"], json!({"text": "cba"}));
    assert!(body["call_id"].is_string());

    let cases = [
        (
            "text.transform",
            Some("wrong-token"),
            args,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "text.transform",
            None,
            args,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "text.transform",
            Some(alice.as_str()),
            "{not json",
            StatusCode::BAD_REQUEST,
            "invalid-request",
        ),
        (
            "text.transform",
            Some(alice.as_str()),
            r#"{"argz": {}}"#,
            StatusCode::BAD_REQUEST,
            "invalid-request",
        ),
        (
            "text.transform",
            Some(alice.as_str()),
            r#"{"args": {"text": 1}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-args",
        ),
        (
            "text.missing",
            Some(alice.as_str()),
            args,
            StatusCode::NOT_FOUND,
            "unknown-tool",
        ),
    ];
    for (tool, bearer, body_text, status, code) in cases {
        let (got_status, body) = send(&app, invoke(tool, bearer, body_text)).await;
        assert_eq!(
            (got_status, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    // `nobody` has no roles: denied by policy, with reasons and the call id of the audit record.
    let (status, body) = send(&app, invoke("text.transform", Some(&token("nobody")), args)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "policy-denied");
    assert_eq!(
        body["error"]["reasons"],
        json!([r#"principal "nobody" has no roles"#])
    );
    assert!(body["call_id"].is_string());
}

/// Every route but the probes (`/healthz`, `/readyz`) answers 401 `unauthenticated` without a valid
/// bearer token, and this list must name every route `server.rs` declares, so
/// a new route cannot forget its `Authenticated` argument unnoticed.
#[tokio::test]
async fn every_route_but_the_probes_refuses_requests_without_a_valid_token() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    // (method, path as declared, a request path)
    let routes = [
        ("GET", "/v1/tools", "/v1/tools"),
        (
            "POST",
            "/v1/tools/{name}/invoke",
            "/v1/tools/text.transform/invoke",
        ),
        ("POST", "/v1/sessions", "/v1/sessions"),
        ("GET", "/v1/audit", "/v1/audit"),
        ("GET", "/v1/budgets", "/v1/budgets"),
        ("PUT", "/v1/budgets/{name}", "/v1/budgets/daily"),
        (
            "GET",
            "/v1/budgets/{name}/history",
            "/v1/budgets/daily/history",
        ),
        ("POST", "/mcp", "/mcp"),
        ("GET", "/metrics", "/metrics"),
    ];
    let source = include_str!("../../host/src/server.rs");
    for prefix in [".route(\"", ".nest_service(\""] {
        for (at, _) in source.match_indices(prefix) {
            let rest = &source[at + prefix.len()..];
            let path = &rest[..rest.find('"').unwrap()];
            assert!(
                ["/healthz", "/readyz"].contains(&path)
                    || routes.iter().any(|(_, declared, _)| *declared == path),
                "server.rs routes `{path}`: add it to this test"
            );
        }
    }
    let alice = token("alice");
    for (method, _, uri) in routes {
        for authorization in [
            None,
            Some("Bearer wrong-token".to_string()),
            Some(format!("Basic {alice}")),
        ] {
            let mut request = Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json");
            if let Some(value) = &authorization {
                request = request.header("authorization", value);
            }
            let (status, body) = send(&app, request.body(Body::from("{}")).unwrap()).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
                "{method} {uri} with {authorization:?}: {body}"
            );
        }
    }
}

/// Found by `fuzz::fuzz_http_requests`: a tool name whose percent-encoding
/// decodes to bytes that are not UTF-8 was answered with the framework's
/// plain-text 400.
#[tokio::test]
async fn a_tool_name_that_is_not_utf8_gets_a_json_error() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    let alice = token("alice");
    for name in ["t%b2e%2eext.stats", "%ff", "text.%c3%28"] {
        let (status, body) = send(&app, invoke(name, Some(&alice), r#"{"args": {}}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error"]["code"], "invalid-request", "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("tool name in the path"),
            "{name}: {body}"
        );
    }
}
