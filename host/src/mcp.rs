//! MCP: Warden's tools for any MCP client, over stdio (`warden mcp --as ID`)
//! and streamable HTTP (`/mcp` on `warden serve`, bearer tokens as for the
//! HTTP API).
//!
//! `tools/list` shows the tools policy allows the principal (decided with empty
//! arguments); `tools/call` goes through [`Kernel::call`] like every other face:
//! schema, policy, sandbox, audit. A failed call is a tool error (`isError`)
//! whose structured content carries the error code, message, reasons and call id.
//!
//! A policy reload that takes effect sends connected clients
//! `notifications/tools/list_changed`.
//!
//! The call's session (policy's `input.session`, the audit record's
//! `session`) is the connection: a stdio process, or one streamable HTTP
//! session. Each principal using the connection gets its own session, minted
//! by the kernel, so a client can neither choose a clean session (a fresh
//! `_meta.traceparent` is trace context, not a session) nor reach another
//! principal's by sending its `mcp-session-id`.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::backend::OutputForm;
use crate::error::{CallError, ErrorCode};
use crate::kernel::{CallRequest, Kernel};
use crate::principal::Principal;
use crate::registry::ToolEntry;

/// One MCP connection's view of the kernel.
#[derive(Debug, Clone)]
pub struct McpServer {
    kernel: Arc<Kernel>,
    /// The principal for stdio, where there is no token; HTTP requests carry theirs.
    principal: Option<Arc<Principal>>,
    /// The kernel session of each principal on this connection.
    sessions: Arc<tokio::sync::Mutex<HashMap<String, String>>>,
    /// Dropped with the connection's last handle, which ends its
    /// list-changed notifier ([`McpServer::on_initialized`]).
    alive: Arc<tokio::sync::watch::Sender<()>>,
}

impl McpServer {
    /// A server for `kernel`; `principal` is fixed for stdio and `None` for HTTP.
    pub fn new(kernel: Arc<Kernel>, principal: Option<Arc<Principal>>) -> McpServer {
        McpServer {
            kernel,
            principal,
            sessions: Arc::default(),
            alive: Arc::new(tokio::sync::watch::Sender::new(())),
        }
    }

    fn principal(&self, context: &RequestContext<RoleServer>) -> Result<Arc<Principal>, ErrorData> {
        if let Some(principal) = &self.principal {
            return Ok(principal.clone());
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Principal>>().cloned())
            .ok_or_else(|| {
                rpc_error(&CallError::new(
                    ErrorCode::Unauthenticated,
                    "no principal: send `Authorization: Bearer <token>`",
                ))
            })
    }

    /// The principal's session on this connection, opened at its first call
    /// (and again if the kernel closed it; its labels then stick to the principal).
    async fn session(&self, principal: &Principal) -> Result<String, ErrorData> {
        // Held across the lookup: two first calls on one connection share
        // one session.
        let mut sessions = self.sessions.lock().await;
        let current = sessions.get(&principal.id).map(String::as_str);
        let session = self
            .kernel
            .sessions()
            .resume_or_open(principal, current)
            .await
            .map_err(|e| rpc_error(&e))?;
        sessions.insert(principal.id.clone(), session.clone());
        Ok(session)
    }
}

/// A request that failed before any tool ran, as the JSON-RPC error of its
/// code's row ([`ErrorCode::row`]), with the code itself as `data.code`.
fn rpc_error(error: &CallError) -> ErrorData {
    ErrorData::new(
        rmcp::model::ErrorCode(error.code.row().mcp),
        error.message.clone(),
        Some(json!({ "code": error.code })),
    )
}

fn to_mcp(tool: &ToolEntry) -> Tool {
    let object = |value: &Value| match value {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let info = tool.info();
    let mut mcp = Tool::new(
        info.name.clone(),
        info.description.clone(),
        Arc::new(object(&info.input_schema)),
    );
    mcp.output_schema = match tool.backend.output_form() {
        OutputForm::Document => Some(Arc::new(object(&info.output_schema))),
        // Gateway tools answer with the upstream's result; its own schema
        // describes the structured part, if it declared one.
        OutputForm::McpResult => info.output_schema["properties"]
            .get("structuredContent")
            .map(|schema| Arc::new(object(schema))),
    };
    let mut annotations = ToolAnnotations::default();
    annotations.read_only_hint = Some(!info.side_effects);
    annotations.open_world_hint = Some(info.labels.iter().any(|l| l == "untrusted-content"));
    mcp.annotations = Some(annotations);
    mcp
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools governed by Warden: every call is checked against its schema and \
                 policy, runs in a sandbox, and is audited. Denials come back as tool errors \
                 with reasons.",
        )
    }

    /// Tells the client `notifications/tools/list_changed` whenever a policy
    /// reload takes effect (what it may call may have changed), for as long
    /// as the connection lasts.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let mut changes = self.kernel.policy_changes();
        let mut alive = self.alive.subscribe();
        let peer = context.peer;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() || peer.notify_tool_list_changed().await.is_err() {
                            return;
                        }
                    }
                    // Never sent: fails once the connection's last handle is gone.
                    _ = alive.changed() => return,
                }
            }
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = self.principal(&context)?;
        let tools = self
            .kernel
            .visible_tools(&principal)
            .map(|tool| to_mcp(tool))
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let principal = self.principal(&context)?;
        let session = self.session(&principal).await?;
        // A contract the client declares for the output: `_meta."warden/contract"`
        // (rmcp moves a request's `_meta` into its context).
        let contract = context
            .meta
            .get(CONTRACT_META)
            .map(|contract| {
                crate::contract::checked(contract).map_err(|e| {
                    ErrorData::invalid_params(format!("_meta.\"{CONTRACT_META}\": {e}"), None)
                })
            })
            .transpose()?;
        let args = Value::Object(request.arguments.unwrap_or_default());
        let response = self
            .kernel
            .call(CallRequest {
                principal,
                tool: request.name.to_string(),
                args,
                session: Some(session),
                contract,
                trace: context
                    .meta
                    .get_traceparent()
                    .and_then(crate::trace::TraceParent::parse),
            })
            .await;
        let result = match (response.result, response.form) {
            (Ok(output), OutputForm::McpResult) => upstream_result(output),
            (Ok(output), OutputForm::Document) => CallToolResult::structured(output),
            (Err(error), _) => CallToolResult::structured_error(json!({
                "code": error.code,
                "message": error.message,
                "reasons": error.reasons,
                "call_id": response.call_id,
            })),
        };
        Ok(result.into())
    }
}

/// A gateway tool's output (`{"content": [...], "structuredContent": ...}`,
/// after policy and redaction) as the MCP result it came from. Policy may
/// have redacted the whole output or any part of it: what is left is shown
/// as text.
fn upstream_result(output: Value) -> CallToolResult {
    let Value::Object(mut output) = output else {
        return CallToolResult::success(vec![rmcp::model::ContentBlock::text(as_text(&output))]);
    };
    let content = output.remove("content").unwrap_or(Value::Null);
    let content = serde_json::from_value(content.clone())
        .unwrap_or_else(|_| vec![rmcp::model::ContentBlock::text(as_text(&content))]);
    let mut result = CallToolResult::success(content);
    // MCP's structured content is an object; a redacted one is left out.
    result.structured_content = output.remove("structuredContent").filter(Value::is_object);
    result
}

/// A JSON value as text: a string as itself, anything else as JSON.
fn as_text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// `_meta` key under which an MCP client declares an output contract for a call.
pub const CONTRACT_META: &str = "warden/contract";

/// Largest JSON-RPC message accepted over stdio.
const STDIO_MAX_MESSAGE: usize = 16 << 20;

/// Serves MCP over this process's stdin and stdout until the client hangs up.
///
/// Lines are checked before rmcp sees them: one that is not JSON gets a
/// JSON-RPC parse error (-32700), one larger than 16 MiB an invalid-request
/// error (-32600), and the session goes on. All output goes through one
/// writer, so answers never interleave.
pub async fn serve_stdio(server: McpServer) -> std::io::Result<()> {
    use rmcp::ServiceExt;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (rmcp_in, mut to_rmcp) = tokio::io::duplex(1 << 16);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(1 << 16);
    let (lines, mut outgoing) = tokio::sync::mpsc::channel::<String>(64);

    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = outgoing.recv().await {
            stdout.write_all(line.as_bytes()).await?;
            stdout.write_all(b"\n").await?;
            stdout.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let answers = lines.clone();
    tokio::spawn(async move {
        let mut from_rmcp = BufReader::new(from_rmcp).lines();
        while let Ok(Some(line)) = from_rmcp.next_line().await {
            if answers.send(line).await.is_err() {
                break;
            }
        }
    });
    let errors = lines.clone();
    tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin());
        loop {
            let line = match read_line_capped(&mut stdin, STDIO_MAX_MESSAGE).await {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => break,
            };
            let reply = match line {
                Line::TooLong => Some(protocol_error(-32600, "message larger than 16 MiB")),
                Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => None,
                Line::Text(text) => match serde_json::from_slice::<Value>(&text) {
                    Ok(_) => {
                        if to_rmcp.write_all(&text).await.is_err()
                            || to_rmcp.write_all(b"\n").await.is_err()
                        {
                            break;
                        }
                        None
                    }
                    Err(e) => Some(protocol_error(-32700, &format!("parse error: {e}"))),
                },
            };
            if let Some(reply) = reply
                && errors.send(reply).await.is_err()
            {
                break;
            }
        }
    });
    drop(lines);

    let running = server
        .serve((rmcp_in, rmcp_out))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    writer.abort();
    Ok(())
}

enum Line {
    Text(Vec<u8>),
    TooLong,
}

/// Reads one `\n`-terminated line, holding at most `max` bytes of it in memory.
async fn read_line_capped<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Line>> {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                None
            } else if too_long {
                Some(Line::TooLong)
            } else {
                Some(Line::Text(line))
            });
        }
        let (chunk, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => (&buffer[..end], Some(end + 1)),
            None => (buffer, None),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(buffer.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            }));
        }
    }
}

/// A JSON-RPC error response with no id (the request could not be read).
fn protocol_error(code: i32, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request that fails before any tool runs gets its code's JSON-RPC
    /// error from the table, and names the Warden code in `data.code`.
    #[test]
    fn protocol_errors_follow_the_error_table() {
        for (code, jsonrpc) in [
            (ErrorCode::Unauthenticated, -32600),
            (ErrorCode::InvalidArgs, -32602),
            (ErrorCode::Internal, -32603),
        ] {
            let error = rpc_error(&CallError::new(code, "what went wrong"));
            assert_eq!(error.code.0, jsonrpc, "{code}");
            assert_eq!(error.code.0, code.row().mcp, "{code}");
            assert_eq!(error.message, "what went wrong");
            assert_eq!(error.data, Some(json!({ "code": code.as_str() })));
        }
    }
}
