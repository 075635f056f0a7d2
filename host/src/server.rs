//! The HTTP JSON API.
//!
//! - `GET /healthz` — liveness, no authentication.
//! - `GET /readyz` — readiness ([`crate::kernel::Readiness`]): 200 when calls
//!   may be sent here, 503 when audit records cannot reach the trail; no
//!   authentication.
//! - `GET /v1/tools` — the tools the caller may see (as MCP `tools/list`).
//! - `POST /v1/tools/{name}/invoke` — body `{"args": {...}, "session": "optional"}`.
//! - `POST /v1/sessions` — mints a session for the caller.
//! - `GET /v1/audit?since=&until=&principal=&tenant=&tool=&decision=&outcome=&session=&limit=`
//!   — audit records, for principals with the `auditor` role.
//! - `GET /metrics` — Prometheus metrics ([`crate::metrics`]), for principals
//!   with the `metrics` or `auditor` role.
//! - `GET /v1/budgets`, `PUT /v1/budgets/{name}`, `GET /v1/budgets/{name}/history`
//!   — the spend ledger ([`crate::budget`]): read by `auditor`s and
//!   `budget-admin`s, set by `budget-admin`s.
//! - `/mcp` — MCP over streamable HTTP ([`crate::mcp`]).
//! - `GET /v1/models`, `POST /v1/chat/completions` — the OpenAI-compatible
//!   gateway ([`crate::openai`]), with OpenAI's error envelope.
//!
//! Every route but `/healthz` and `/readyz` needs `Authorization: Bearer <token>`: `/v1`
//! handlers take an `Authenticated` argument, and `/mcp` runs the same
//! extractor in front of MCP. Errors are
//! `{"error": {"code", "message", "reasons"?}, "call_id"?}` with one HTTP status per code.

use std::future::IntoFuture;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::error::{CallError, ErrorCode};
use crate::kernel::{CallRequest, Kernel};
use crate::principal::Principal;

/// An error response.
struct ApiError {
    error: CallError,
    call_id: Option<String>,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            error: CallError::new(code, message),
            call_id: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.error });
        if let Some(call_id) = self.call_id {
            body["call_id"] = Value::String(call_id);
        }
        (self.error.code.http_status(), Json(body)).into_response()
    }
}

/// Builds the router over a started kernel, with MCP at `/mcp`.
pub fn router(kernel: Arc<Kernel>, settings: &ServerConfig) -> Router {
    router_until(kernel, settings, CancellationToken::new())
}

/// [`router`], whose MCP sessions end when `mcp_stop` is cancelled.
fn router_until(
    kernel: Arc<Kernel>,
    settings: &ServerConfig,
    mcp_stop: CancellationToken,
) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .route("/v1/tools", get(list_tools))
        .route("/v1/tools/{name}/invoke", post(invoke))
        .route("/v1/sessions", post(open_session))
        .route("/v1/audit", get(audit_records))
        .route("/v1/budgets", get(list_budgets))
        .route("/v1/budgets/{name}", axum::routing::put(set_budget))
        .route("/v1/budgets/{name}/history", get(budget_history))
        .merge(crate::openai::router())
        .nest_service("/mcp", mcp_router(kernel.clone(), settings, mcp_stop))
        .with_state(kernel)
}

async fn readiness(State(kernel): State<Arc<Kernel>>) -> Response {
    let readiness = kernel.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// MCP over streamable HTTP, behind bearer authentication; rmcp validates
/// `Host` and `Origin` and bounds request bodies.
fn mcp_router(kernel: Arc<Kernel>, settings: &ServerConfig, stop: CancellationToken) -> Router {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_origins(settings.mcp_allowed_origins.clone())
        .enforce_origin_validation()
        .with_cancellation_token(stop);
    if !settings.mcp_allowed_hosts.is_empty() {
        config = config.with_allowed_hosts(settings.mcp_allowed_hosts.clone());
    }
    let for_sessions = kernel.clone();
    let service = StreamableHttpService::new(
        move || Ok(crate::mcp::McpServer::new(for_sessions.clone(), None)),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .fallback_service(service)
        .layer(axum::middleware::from_fn_with_state(
            kernel,
            mcp_authenticate,
        ))
}

/// Authenticates every `/mcp` request with [`Authenticated`], as the `/v1`
/// routes are, and hands the principal to [`crate::mcp::McpServer`].
async fn mcp_authenticate(
    State(kernel): State<Arc<Kernel>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match Authenticated::from_request_parts(&mut parts, &kernel).await {
        Ok(Authenticated(principal)) => {
            parts.extensions.insert(principal);
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Err(e) => e.into_response(),
    }
}

/// Serves the API on `listen` until Ctrl-C or SIGTERM, then drains: see [`drain`].
pub async fn serve(
    kernel: Arc<Kernel>,
    settings: &ServerConfig,
    listen: &str,
) -> std::io::Result<()> {
    kernel.watch_policy();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "warden listening");
    let mut settings = settings.clone();
    settings
        .mcp_allowed_origins
        .extend(own_loopback_origins(bound));
    // Without TCP_NODELAY a stream's small events wait on the client's
    // delayed ACK (about 40 ms each: measured by benches/gateway.rs).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let stop = CancellationToken::new();
    let mcp_stop = CancellationToken::new();
    let app = router_until(kernel.clone(), &settings, mcp_stop.clone());
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .into_future();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        served = &mut server => return served,
        () = shutdown_signal() => {}
    }
    let bound = std::time::Duration::from_millis(settings.drain_timeout_ms);
    drain(&kernel, server, stop, mcp_stop, bound).await;
    Ok(())
}

/// After SIGTERM or Ctrl-C, within `bound`: no connection is accepted
/// (an orchestrator's endpoints follow within seconds: docs/deploy.md); the calls already taken run to their answers
/// (their records committed); MCP sessions then end (after a short grace,
/// so the last answers are written), the server waits for its connections
/// to close, and the audit writer for every record it was handed. What
/// `bound` leaves unfinished is logged; the process still exits 0, and a
/// call cut off that way was never answered.
async fn drain(
    kernel: &Kernel,
    server: std::pin::Pin<&mut impl std::future::Future<Output = std::io::Result<()>>>,
    stop: CancellationToken,
    mcp_stop: CancellationToken,
    bound: std::time::Duration,
) {
    /// How long MCP streams get to carry the last answers out.
    const MCP_GRACE: std::time::Duration = std::time::Duration::from_millis(250);
    let deadline = tokio::time::Instant::now() + bound;
    tracing::info!(
        in_flight = kernel.in_flight(),
        bound_ms = bound.as_millis() as u64,
        "draining"
    );
    stop.cancel();
    let mut server = server;
    let finished = async {
        kernel.settle_in_flight(bound).await;
        // Plain HTTP connections close once answered; MCP streams stay
        // open until their sessions end.
        if tokio::time::timeout(MCP_GRACE, server.as_mut())
            .await
            .is_ok()
        {
            return;
        }
        mcp_stop.cancel();
        let _ = server.as_mut().await;
    };
    if tokio::time::timeout_at(deadline, finished).await.is_err() {
        tracing::warn!(
            in_flight = kernel.in_flight(),
            "drain deadline passed with calls in flight; they are cut off unanswered"
        );
    }
    let flush = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(std::time::Duration::from_secs(1));
    let unwritten = kernel.audit().flush(flush).await;
    if unwritten > 0 {
        tracing::warn!(
            records = unwritten,
            "audit records still unwritten at exit; their calls were not answered"
        );
    }
    tracing::info!("drained");
}

/// The origins naming this server's own port on the loopback host
/// (`http://localhost:PORT`, `http://127.0.0.1:PORT`, `http://[::1]:PORT`),
/// when it listens there: a browser page can only have such an origin if
/// this server served it, and it serves no pages, so these are local
/// clients such as the MCP Inspector, never a DNS-rebinding page (whose
/// origin names the attacker's host). Other ports of the loopback host are
/// other origins, refused unless configured.
fn own_loopback_origins(bound: std::net::SocketAddr) -> Vec<String> {
    if !(bound.ip().is_loopback() || bound.ip().is_unspecified()) {
        return Vec::new();
    }
    let port = bound.port();
    ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .map(|host| format!("http://{host}:{port}"))
        .collect()
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The caller of an authenticated route: taking it as a handler argument
/// checks `Authorization: Bearer <token>` against the configured principals
/// and answers `401 unauthenticated` before the handler runs.
struct Authenticated(Arc<Principal>);

impl FromRequestParts<Arc<Kernel>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        kernel: &Arc<Kernel>,
    ) -> Result<Self, Self::Rejection> {
        kernel
            .principals()
            .by_bearer(&parts.headers)
            .map(Authenticated)
            .map_err(|error| ApiError {
                error,
                call_id: None,
            })
    }
}

async fn list_tools(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let tools: Vec<_> = kernel.visible_tools(&principal).map(|t| t.info()).collect();
    Ok(Json(json!({ "tools": tools })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    #[serde(default = "empty_object")]
    args: Value,
    session: Option<String>,
    /// An output contract the caller declares for this call.
    contract: Option<Value>,
}

fn empty_object() -> Value {
    json!({})
}

async fn invoke(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // A tool name that is not UTF-8 once percent-decoded gets a JSON error
    // like every other bad request, not the framework's plain text.
    let Path(name) = name.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("tool name in the path: {}", e.body_text()),
        )
    })?;
    // The body is JSON whatever its `Content-Type` says (`curl -d` sends
    // form encoding): the bearer token, not the header, is what keeps
    // browsers from posting here.
    let body = match body {
        Ok(body) => body,
        // Over the body limit: say so with its own status, not a plain 400.
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let error = CallError::new(
                ErrorCode::InvalidRequest,
                format!("request body: {}", e.body_text()),
            );
            return Ok((e.status(), Json(json!({ "error": error }))).into_response());
        }
        Err(e) => return Err(ApiError::new(ErrorCode::InvalidRequest, e.body_text())),
    };
    let body: InvokeBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "request body: expected {{\"args\": {{...}}, \"session\"?: \"...\", \"contract\"?: {{...}}}}: {e}"
            ),
        )
    })?;
    let contract = body.contract.as_ref().map(warden_contract).transpose()?;
    let session = body.session.clone();
    let response = kernel
        .call(CallRequest {
            principal,
            tool: name,
            args: body.args,
            session: body.session,
            contract,
            // A malformed `traceparent` is dropped, not refused: tracing is
            // best effort and never decides a call.
            trace: headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(crate::trace::TraceParent::parse),
        })
        .await;
    match response.result {
        Ok(output) => Ok(Json(
            json!({ "call_id": response.call_id, "session": session, "output": output }),
        )
        .into_response()),
        Err(error) => Err(ApiError {
            error,
            call_id: Some(response.call_id),
        }),
    }
}

/// The request's contract, checked; a malformed one is a bad request.
fn warden_contract(contract: &Value) -> Result<Arc<str>, ApiError> {
    crate::contract::checked(contract).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("request body: contract: {e}"),
        )
    })
}

/// Mints a session for the caller: `{"session": "s_…"}`. Later calls that
/// send it back share its labels; no other principal can use it.
async fn open_session(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let session = kernel
        .sessions()
        .open(&principal)
        .await
        .map_err(|error| ApiError {
            error,
            call_id: None,
        })?;
    Ok(Json(json!({ "session": session })))
}

/// Role that may read `/metrics` (a Prometheus scraper's principal).
pub const METRICS_ROLE: &str = "metrics";

/// Prometheus metrics ([`crate::metrics`]), for principals with the
/// `metrics` or `auditor` role.
async fn metrics(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    if !principal
        .roles
        .iter()
        .any(|r| r == METRICS_ROLE || r == AUDITOR_ROLE)
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("reading metrics needs the `{METRICS_ROLE}` or `{AUDITOR_ROLE}` role"),
        ));
    }
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok((
        [(axum::http::header::CONTENT_TYPE, content_type)],
        kernel.metrics_text(),
    )
        .into_response())
}

/// Role that may read the audit trail over HTTP.
pub const AUDITOR_ROLE: &str = "auditor";
/// Most records one `GET /v1/audit` returns.
const AUDIT_PAGE_MAX: i64 = 10_000;

async fn audit_records(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
    filter: Result<Query<crate::audit::AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    if !principal.roles.iter().any(|r| r == AUDITOR_ROLE) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("reading the audit trail needs the `{AUDITOR_ROLE}` role"),
        ));
    }
    let Query(mut filter) = filter.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("query string: {}", e.body_text()),
        )
    })?;
    filter.limit = Some(filter.limit.unwrap_or(1000).clamp(1, AUDIT_PAGE_MAX));
    let records = kernel.audit().store().query(&filter).await.map_err(|e| {
        // The store's own message may name hosts, users or tables: log it, do not return it.
        tracing::error!(error = %e, "reading the audit trail failed");
        ApiError::new(
            ErrorCode::AuditUnavailable,
            "the audit store is unavailable",
        )
    })?;
    Ok(Json(json!({ "records": records })))
}

/// Role that may set budgets over HTTP (and read them, as `auditor` may).
pub const BUDGET_ADMIN_ROLE: &str = "budget-admin";

/// The caller may read budgets: an `auditor` or a `budget-admin`.
fn may_read_budgets(principal: &Principal) -> Result<(), ApiError> {
    if principal
        .roles
        .iter()
        .any(|r| r == AUDITOR_ROLE || r == BUDGET_ADMIN_ROLE)
    {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Forbidden,
        format!("reading budgets needs the `{AUDITOR_ROLE}` or `{BUDGET_ADMIN_ROLE}` role"),
    ))
}

/// The ledger failed: logged, and answered without the store's own message.
fn ledger_unavailable(e: sqlx::Error) -> ApiError {
    tracing::error!(error = %e, "the spend ledger is unavailable");
    ApiError::new(
        ErrorCode::BudgetUnavailable,
        "the spend ledger is unavailable",
    )
}

/// `GET /v1/budgets`: every budget with its current period's counts.
async fn list_budgets(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    may_read_budgets(&principal)?;
    let budgets = kernel.ledger().list().await.map_err(ledger_unavailable)?;
    Ok(Json(json!({ "budgets": budgets })))
}

/// `PUT /v1/budgets/{name}`: sets a budget's limit, or creates a budget.
async fn set_budget(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    if !principal.roles.iter().any(|r| r == BUDGET_ADMIN_ROLE) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("setting budgets needs the `{BUDGET_ADMIN_ROLE}` role"),
        ));
    }
    let Path(name) = name.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let body = body.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let change: crate::budget::BudgetChange = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("request body: {e}")))?;
    match kernel
        .ledger()
        .set(&name, change, &principal.id)
        .await
        .map_err(ledger_unavailable)?
    {
        Ok(status) => Ok(Json(json!({ "budget": status }))),
        Err(message) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("request body: {message}"),
        )),
    }
}

/// `?limit=` of a history read.
#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<i64>,
}

/// `GET /v1/budgets/{name}/history?limit=`: limit changes and ledger entries.
async fn budget_history(
    State(kernel): State<Arc<Kernel>>,
    Authenticated(principal): Authenticated,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    may_read_budgets(&principal)?;
    let Path(name) = name.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("query string: {}", e.body_text()),
        )
    })?;
    let history = kernel
        .ledger()
        .history(&name, query.limit.unwrap_or(1000))
        .await
        .map_err(ledger_unavailable)?;
    Ok(Json(json!(history)))
}
