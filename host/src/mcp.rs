//! MCP: Warden's tools for any MCP client, over stdio (`warden mcp --as ID`)
//! and streamable HTTP (`/mcp` on `warden serve`, bearer tokens as for the
//! HTTP API).
//!
//! `tools/list` shows the tools policy allows the principal (decided with empty
//! arguments); `tools/call` goes through [`Kernel::call`] like every other face:
//! schema, policy, sandbox, audit. A failed call is a tool error (`isError`)
//! whose structured content carries the error code, message, reasons and call id.
//!
//! The call's session (policy's `input.session.id`, the audit record's
//! `session`) is the W3C trace id of the request's `_meta.traceparent` when it
//! has one, else the streamable HTTP session id, else one id per connection.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::kernel::{CallRequest, Kernel};
use crate::principal::Principal;
use crate::registry::ToolEntry;

/// Header carrying the MCP session id on streamable HTTP.
const SESSION_HEADER: &str = "mcp-session-id";

/// One MCP connection's view of the kernel.
#[derive(Debug, Clone)]
pub struct McpServer {
    kernel: Arc<Kernel>,
    /// The principal for stdio, where there is no token; HTTP requests carry theirs.
    principal: Option<Arc<Principal>>,
    /// Session id of this connection, when the request names none.
    connection: String,
}

impl McpServer {
    /// A server for `kernel`; `principal` is fixed for stdio and `None` for HTTP.
    pub fn new(kernel: Arc<Kernel>, principal: Option<Arc<Principal>>) -> McpServer {
        McpServer {
            kernel,
            principal,
            connection: uuid::Uuid::new_v4().to_string(),
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
            .ok_or_else(|| ErrorData::invalid_request("unauthenticated", None))
    }

    fn session(&self, context: &RequestContext<RoleServer>) -> String {
        // rmcp moves the request's `_meta` into the context.
        let trace_id = context
            .meta
            .get_traceparent()
            .and_then(|traceparent| traceparent.split('-').nth(1))
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        if let Some(trace_id) = trace_id {
            return trace_id.to_string();
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get(SESSION_HEADER))
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| self.connection.clone(), str::to_string)
    }
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
    mcp.output_schema = Some(Arc::new(object(&info.output_schema)));
    let mut annotations = ToolAnnotations::default();
    annotations.read_only_hint = Some(!info.side_effects);
    annotations.open_world_hint = Some(info.labels.iter().any(|l| l == "untrusted-content"));
    mcp.annotations = Some(annotations);
    mcp
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools governed by Warden: every call is checked against its schema and \
                 policy, runs in a sandbox, and is audited. Denials come back as tool errors \
                 with reasons.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = self.principal(&context)?;
        let tools = self
            .kernel
            .registry()
            .tools()
            .filter(|tool| self.kernel.could_allow(&principal, tool))
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
        let session = self.session(&context);
        let args = Value::Object(request.arguments.unwrap_or_default());
        let response = self
            .kernel
            .call(CallRequest {
                principal,
                tool: request.name.to_string(),
                args,
                session: Some(session),
            })
            .await;
        let result = match response.result {
            Ok(output) => CallToolResult::structured(output),
            Err(error) => CallToolResult::structured_error(json!({
                "code": error.code,
                "message": error.message,
                "reasons": error.reasons,
                "call_id": response.call_id,
            })),
        };
        Ok(result.into())
    }
}
