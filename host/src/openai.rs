//! The OpenAI-compatible face of `warden serve`, so that unmodified OpenAI
//! SDKs and tools work against Warden by changing only the base URL and key:
//!
//! - `GET /v1/models`, `GET /v1/models/{model}` — the models the caller's
//!   policy could allow.
//! - `POST /v1/chat/completions` — one completion through [`Kernel::complete`]
//!   (or, streamed, [`Kernel::stream`]): decided, verified and audited like a
//!   tool call.
//! - `POST /v1/embeddings` — embeddings through [`Kernel::embed`].
//!
//! The "API key" is the principal's bearer token. Errors are OpenAI's
//! envelope, `{"error": {"message", "type", "param", "code"}}`, with
//! Warden's code (or OpenAI's, where one means the same), the call's id and
//! policy's reasons beside them. `x-warden-session` names a session minted
//! by `POST /v1/sessions`; `traceparent` is passed on like a tool call's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::{CallError, ErrorCode};
use crate::kernel::{CallRequest, Kernel};
use crate::principal::Principal;

/// The OpenAI routes, over a started kernel.
pub fn router() -> Router<Arc<Kernel>> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{model}", get(retrieve_model))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
}

/// An error in OpenAI's envelope.
struct OpenAiError {
    error: CallError,
    call_id: Option<String>,
}

impl From<CallError> for OpenAiError {
    fn from(error: CallError) -> Self {
        OpenAiError {
            error,
            call_id: None,
        }
    }
}

/// `{"error": {...}}` for `error`, OpenAI's way.
fn error_body(error: &OpenAiError) -> Value {
    let status = error.error.code.http_status();
    let kind = match status.as_u16() {
        _ if error.error.code == ErrorCode::BudgetExceeded => "insufficient_quota",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    // OpenAI's own code where one means the same; Warden's otherwise.
    let code = match error.error.code {
        ErrorCode::UnknownModel => "model_not_found",
        ErrorCode::Unauthenticated => "invalid_api_key",
        other => other.as_str(),
    };
    // OpenAI clients show the message alone: policy's reasons go in it.
    let message = if error.error.reasons.is_empty() {
        error.error.message.clone()
    } else {
        format!(
            "{}: {}",
            error.error.message,
            error.error.reasons.join("; ")
        )
    };
    let mut body = json!({
        "message": message,
        "type": kind,
        "param": Value::Null,
        "code": code,
    });
    if error.error.code == ErrorCode::UnknownModel {
        body["param"] = json!("model");
    }
    if !error.error.reasons.is_empty() {
        body["reasons"] = json!(error.error.reasons);
    }
    if let Some(call_id) = &error.call_id {
        body["call_id"] = json!(call_id);
    }
    json!({ "error": body })
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let status = self.error.code.http_status();
        let mut response = (status, Json(error_body(&self))).into_response();
        if let Some(ms) = self.error.retry_after_ms {
            let seconds = u64::from(ms).div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

/// The principal whose token the request carries, or an OpenAI-shaped 401.
fn caller(kernel: &Kernel, headers: &HeaderMap) -> Result<Arc<Principal>, OpenAiError> {
    kernel
        .principals()
        .by_bearer(headers)
        .map_err(OpenAiError::from)
}

/// A model as OpenAI lists it.
fn model_json(model: &crate::registry::ToolEntry) -> Value {
    json!({
        "id": model.name,
        "object": "model",
        "created": 0,
        "owned_by": model.provider(),
    })
}

async fn list_models(
    State(kernel): State<Arc<Kernel>>,
    headers: HeaderMap,
) -> Result<Json<Value>, OpenAiError> {
    let principal = caller(&kernel, &headers)?;
    let models: Vec<Value> = kernel
        .visible_models(&principal)
        .map(|model| model_json(model))
        .collect();
    Ok(Json(json!({ "object": "list", "data": models })))
}

/// One model the caller may see; a model it may not see is as unknown as
/// one that does not exist.
async fn retrieve_model(
    State(kernel): State<Arc<Kernel>>,
    headers: HeaderMap,
    model: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, OpenAiError> {
    let principal = caller(&kernel, &headers)?;
    let name = model.map(|p| p.0).unwrap_or_default();
    kernel
        .visible_models(&principal)
        .find(|m| m.name == name)
        .map(|m| Json(model_json(m)))
        .ok_or_else(|| {
            CallError::new(
                ErrorCode::UnknownModel,
                format!("no model named `{}`", crate::bounds::bounded(&name, 128)),
            )
            .into()
        })
}

/// The request a face hands the kernel: the caller, the model its JSON body
/// names, the body as the arguments, and the session and trace headers.
fn model_request(
    kernel: &Kernel,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<CallRequest, OpenAiError> {
    let principal = caller(kernel, headers)?;
    let body = body.map_err(|e| {
        let error = CallError::new(
            ErrorCode::InvalidRequest,
            format!("request body: {}", e.body_text()),
        );
        OpenAiError::from(error)
    })?;
    let args: Value = serde_json::from_slice(&body).map_err(|e| {
        CallError::new(
            ErrorCode::InvalidRequest,
            format!("request body is not JSON: {e}"),
        )
    })?;
    let model = match args.get("model") {
        Some(Value::String(model)) => model.clone(),
        _ => {
            return Err(CallError::new(
                ErrorCode::InvalidRequest,
                "request body: `model` must be a string naming a model (`GET /v1/models`)",
            )
            .into());
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Ok(CallRequest {
        principal,
        tool: model,
        args,
        session: header("x-warden-session").map(str::to_string),
        contract: None,
        trace: header("traceparent").and_then(crate::trace::TraceParent::parse),
    })
}

/// `response` with the call's id in `x-warden-call-id`.
fn with_call_id(mut response: Response, call_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(call_id) {
        response.headers_mut().insert("x-warden-call-id", value);
    }
    response
}

async fn embeddings(
    State(kernel): State<Arc<Kernel>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    let request = model_request(&kernel, &headers, body)?;
    let base64 = request.args.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let response = kernel.embed(request).await;
    let call_id = response.call_id;
    let mut answer = response.result.map_err(|error| OpenAiError {
        error,
        call_id: Some(call_id.clone()),
    })?;
    answer["object"] = json!("list");
    if let Some(data) = answer.get_mut("data").and_then(Value::as_array_mut) {
        for item in data {
            item["object"] = json!("embedding");
            if base64 {
                item["embedding"] = json!(base64_vector(&item["embedding"]));
            }
        }
    }
    Ok(with_call_id(
        (StatusCode::OK, Json(answer)).into_response(),
        &call_id,
    ))
}

/// A vector as OpenAI's base64 form: its floats as little-endian `f32` bytes.
fn base64_vector(vector: &Value) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = vector
        .as_array()
        .map(|numbers| {
            numbers
                .iter()
                .flat_map(|n| (n.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
                .collect()
        })
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn chat_completions(
    State(kernel): State<Arc<Kernel>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    let request = model_request(&kernel, &headers, body)?;
    let model = request.tool.clone();
    let args = &request.args;
    let streamed = args.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = args.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
    if streamed {
        return match kernel.stream(request).await {
            Ok(completion) => Ok(stream(kernel, completion, model, include_usage)),
            Err(refused) => Err(OpenAiError {
                error: refused.result.err().unwrap_or_else(|| {
                    CallError::new(ErrorCode::Internal, "a refused stream without an error")
                }),
                call_id: Some(refused.call_id),
            }),
        };
    }
    let response = kernel.complete(request).await;
    let call_id = response.call_id;
    let mut completion = response.result.map_err(|error| OpenAiError {
        error,
        call_id: Some(call_id.clone()),
    })?;
    completion["id"] = json!(format!("chatcmpl-{call_id}"));
    completion["object"] = json!("chat.completion");
    completion["created"] = json!(chrono::Utc::now().timestamp());
    Ok(with_call_id(
        (StatusCode::OK, Json(completion)).into_response(),
        &call_id,
    ))
}

/// Events a streamed answer may have waiting for a slow client.
const STREAM_BUFFER: usize = 32;

/// The completion as server-sent events, OpenAI's way: `data: {chunk}`
/// events, a usage chunk when asked for, then `data: [DONE]`; or, when the
/// stream was stopped, an event `data: {"error": {...}}` naming why. A
/// task pumps it, so the record is written even when the client goes away
/// (which stops the provider's stream).
fn stream(
    kernel: Arc<Kernel>,
    mut completion: crate::kernel::StreamingCompletion,
    model: String,
    include_usage: bool,
) -> Response {
    use axum::response::sse::{Event, Sse};
    let (events, receiver) =
        tokio::sync::mpsc::channel::<Result<Event, std::convert::Infallible>>(STREAM_BUFFER);
    let call_id = completion.call_id().to_string();
    let id = format!("chatcmpl-{call_id}");
    let created = chrono::Utc::now().timestamp();
    let frame = move |mut chunk: Value| {
        chunk["id"] = json!(id);
        chunk["object"] = json!("chat.completion.chunk");
        chunk["created"] = json!(created);
        chunk["model"] = json!(model);
        Ok(Event::default().data(chunk.to_string()))
    };
    tokio::spawn(async move {
        let mut gone = false;
        loop {
            // A client that goes away while the provider is still thinking
            // stops the stream now, not at the next chunk.
            let next = tokio::select! {
                next = kernel.stream_chunks(&mut completion) => next,
                () = events.closed() => {
                    gone = true;
                    None
                }
            };
            let Some(chunks) = next else {
                if gone {
                    completion.cancel();
                }
                break;
            };
            for chunk in chunks {
                if events.send(frame(chunk)).await.is_err() {
                    gone = true;
                    break;
                }
            }
            if gone {
                completion.cancel();
                break;
            }
        }
        let end = kernel.end_stream(completion).await;
        if gone {
            return;
        }
        for chunk in end.chunks {
            if events.send(frame(chunk)).await.is_err() {
                return;
            }
        }
        let last = match end.response.result {
            Ok(_) => {
                if include_usage && let Some(usage) = end.usage {
                    let chunk = json!({ "choices": [], "usage": usage });
                    let _ = events.send(frame(chunk)).await;
                }
                Event::default().data("[DONE]")
            }
            Err(error) => {
                let body = error_body(&OpenAiError {
                    error,
                    call_id: Some(end.response.call_id),
                });
                Event::default().data(body.to_string())
            }
        };
        let _ = events.send(Ok(last)).await;
    });
    with_call_id(
        Sse::new(tokio_stream::wrappers::ReceiverStream::new(receiver)).into_response(),
        &call_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_have_openai_s_envelope() {
        let error = OpenAiError {
            error: CallError {
                retry_after_ms: Some(1500),
                ..CallError::new(ErrorCode::ProviderRateLimited, "slow down")
            },
            call_id: Some("c1".into()),
        };
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "2");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            body,
            json!({"error": {"message": "slow down", "type": "rate_limit_error",
                "param": null, "code": "provider-rate-limited", "call_id": "c1"}})
        );
        let unknown = OpenAiError::from(CallError::new(
            ErrorCode::UnknownModel,
            "no model named `x`",
        ))
        .into_response();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    }
}
