//! Gateway: the tools of existing, unmodified MCP servers behind Warden.
//!
//! An upstream is a child process spoken to over stdio or a server reached
//! over streamable HTTP. Its tools join the registry as `upstream.tool` and
//! every call goes through the same pipeline as a plugin's: schema, policy
//! (with the arguments), audit with the upstream's identity. Only the run
//! stage differs: instead of a sandbox, the call is forwarded to the upstream
//! within the configured time limit.
//!
//! A tool's output is the upstream's result as MCP has it,
//! `{"content": [...], "structuredContent": ...}`, so output policies and
//! redactions see what the client will see.

use std::borrow::Cow;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    RequestMetaObject,
};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};

use crate::backend::{Backend, BoxFuture, Invocation, OutputForm, Provider, Ran, UpstreamIdentity};
use crate::capabilities::{Effective, Grants, Requested};
use crate::config::{Config, UpstreamConfig, UpstreamTransport};
use crate::error::{CallError, Error, ErrorCode, Result};
use crate::trace::TraceParent;

type Client = RunningService<RoleClient, ClientConfig>;

/// Longest time an upstream gets to answer `initialize` and `tools/list`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// An MCP server whose tools Warden serves under policy.
#[derive(Debug)]
pub struct Upstream {
    /// Name in the host configuration; the prefix of its tools' names.
    pub name: String,
    /// Identity learned at connection, as policy and audit see it.
    provider: Provider,
    /// Limits applied to its calls (time, concurrency, output size); it holds
    /// no sandbox capabilities.
    pub capabilities: Effective,
    /// One permit per call allowed to run at once.
    pub(crate) slots: tokio::sync::Semaphore,
    config: UpstreamConfig,
    /// The live session; replaced when the upstream went away.
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

/// A tool an upstream offers, as it described it.
#[derive(Debug)]
pub struct UpstreamTool {
    /// Name at the upstream.
    pub name: String,
    /// Description.
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// JSON Schema of `structuredContent`, when the upstream declares one.
    /// (Its annotations, `readOnlyHint` included, are claims and not kept:
    /// side effects are the operator's to pin.)
    pub output_schema: Option<Value>,
}

impl Upstream {
    /// Connects to the upstream named `name` and lists its tools.
    pub async fn connect(
        name: &str,
        upstream_config: &UpstreamConfig,
        config: &Config,
    ) -> Result<(Upstream, Vec<UpstreamTool>)> {
        let fail = |message: String| Error::Upstream {
            upstream: name.to_string(),
            message,
        };
        let grants = Grants {
            time_limit_ms: upstream_config.time_limit_ms,
            max_concurrent: upstream_config.max_concurrent,
            ..Grants::default()
        };
        let mut capabilities = Effective::intersect(
            &Requested::default(),
            &grants,
            &config.limits,
            &config.secrets,
        )
        .map_err(|m| fail(format!("limits: {m}")))?;
        // It runs outside the sandbox: Warden bounds its time, concurrency and
        // output, not its memory.
        capabilities.memory_bytes = None;

        let client = tokio::time::timeout(CONNECT_TIMEOUT, open(name, upstream_config))
            .await
            .map_err(|_| {
                fail(format!(
                    "did not complete the MCP handshake within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(fail)?;
        let listed = tokio::time::timeout(CONNECT_TIMEOUT, client.list_all_tools())
            .await
            .map_err(|_| fail("did not answer tools/list in time".into()))?
            .map_err(|e| fail(format!("tools/list failed: {e}")))?;
        let info = client.peer_info();
        let identity = UpstreamIdentity {
            transport: match upstream_config.transport {
                UpstreamTransport::Stdio { .. } => "stdio",
                UpstreamTransport::Http { .. } => "http",
            },
            endpoint: upstream_config.transport.endpoint(),
            server_name: info
                .as_ref()
                .and_then(|i| i.server_info.as_ref())
                .map(|s| s.name.clone()),
            server_version: info
                .as_ref()
                .and_then(|i| i.server_info.as_ref())
                .map(|s| s.version.clone()),
            protocol_version: info
                .as_ref()
                .map(|i| i.protocol_version.to_string())
                .unwrap_or_default(),
        };

        let mut tools = Vec::new();
        for tool in listed {
            if let Some(exposed) = &upstream_config.tools
                && !exposed.iter().any(|t| *t == tool.name)
            {
                continue;
            }
            tools.push(UpstreamTool {
                name: tool.name.to_string(),
                description: tool.description.map(Cow::into_owned).unwrap_or_default(),
                input_schema: Value::Object((*tool.input_schema).clone()),
                output_schema: tool.output_schema.map(|s| Value::Object((*s).clone())),
            });
        }
        if let Some(exposed) = &upstream_config.tools {
            for wanted in exposed {
                if !tools.iter().any(|t| t.name == *wanted) {
                    return Err(fail(format!(
                        "`tools` lists `{wanted}`, which the server does not offer"
                    )));
                }
            }
        }

        let provider = Provider {
            name: name.to_string(),
            version: identity.server_version.clone().unwrap_or_default(),
            sha256: None,
            upstream_json: Some(serde_json::to_string(&identity).unwrap_or_default()),
            upstream: Some(identity),
        };
        Ok((
            Upstream {
                name: name.to_string(),
                provider,
                slots: tokio::sync::Semaphore::new(capabilities.max_concurrent as usize),
                capabilities,
                config: upstream_config.clone(),
                client: tokio::sync::Mutex::new(Some(Arc::new(client))),
            },
            tools,
        ))
    }

    /// Forwards one `tools/call` within `time_limit`. Returns the result as
    /// JSON text, or why there is none.
    async fn call(
        &self,
        tool: &str,
        args: &Value,
        time_limit: Duration,
        trace: Option<&TraceParent>,
    ) -> std::result::Result<String, CallError> {
        let unavailable = |message: String| {
            CallError::new(
                ErrorCode::UpstreamUnavailable,
                format!("upstream `{}`: {message}", self.name),
            )
        };
        let deadline = tokio::time::Instant::now() + time_limit;
        let client = tokio::time::timeout_at(deadline, self.session())
            .await
            .map_err(|_| unavailable("could not reconnect in time".into()))?
            .map_err(unavailable)?;
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = args.as_object().cloned();
        if let Some(trace) = trace {
            let mut meta = RequestMetaObject::new();
            meta.set_traceparent(trace.as_str());
            params.meta = Some(meta);
        }
        let result = match tokio::time::timeout_at(deadline, client.call_tool(params)).await {
            Err(_) => {
                return Err(CallError::new(
                    ErrorCode::Timeout,
                    format!(
                        "upstream `{}` did not answer within {} ms",
                        self.name,
                        time_limit.as_millis()
                    ),
                ));
            }
            Ok(Err(ServiceError::McpError(e))) => {
                return Err(CallError::new(
                    ErrorCode::ToolFailed,
                    format!("upstream `{}` refused the call: {}", self.name, e.message),
                ));
            }
            Ok(Err(e)) => {
                self.forget(&client).await;
                return Err(unavailable(e.to_string()));
            }
            Ok(Ok(result)) => result,
        };
        if result.is_error == Some(true) {
            return Err(CallError::new(
                ErrorCode::ToolFailed,
                format!("upstream `{}`: {}", self.name, error_text(&result)),
            ));
        }
        let mut output = json!({ "content": result.content });
        if let Some(structured) = result.structured_content {
            output["structuredContent"] = structured;
        }
        Ok(output.to_string())
    }

    /// The live session, reconnecting if the upstream went away.
    async fn session(&self) -> std::result::Result<Arc<Client>, String> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref()
            && !client.is_closed()
            && !client.is_transport_closed()
        {
            return Ok(client.clone());
        }
        tracing::warn!(upstream = %self.name, "reconnecting to upstream MCP server");
        let client = Arc::new(open(&self.name, &self.config).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Drops `client` if it is still the live session, so the next call reconnects.
    async fn forget(&self, client: &Arc<Client>) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|live| Arc::ptr_eq(live, client)) {
            *slot = None;
        }
    }
}

impl Backend for Upstream {
    fn provider(&self) -> &Provider {
        &self.provider
    }

    fn capabilities(&self) -> &Effective {
        &self.capabilities
    }

    fn slots(&self) -> &tokio::sync::Semaphore {
        &self.slots
    }

    fn output_form(&self) -> OutputForm {
        OutputForm::McpResult
    }

    fn invoke<'a>(&'a self, call: Invocation<'a>) -> BoxFuture<'a, Ran> {
        Box::pin(async move {
            Ran {
                output: self
                    .call(
                        call.tool,
                        call.args,
                        call.capabilities.time_limit,
                        call.trace,
                    )
                    .await,
                refusals: Vec::new(),
            }
        })
    }
}

/// The text of an `isError` result, for the caller's error message.
fn error_text(result: &CallToolResult) -> String {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
        .collect();
    if text.is_empty() {
        "the tool reported an error".to_string()
    } else {
        text.join("\n")
    }
}

/// Starts a session with the upstream: spawns the child or opens the HTTP
/// session, then completes the MCP handshake as client `warden`.
async fn open(name: &str, config: &UpstreamConfig) -> std::result::Result<Client, String> {
    let handler = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("warden", env!("CARGO_PKG_VERSION")),
    );
    match &config.transport {
        UpstreamTransport::Stdio { command, env, cwd } => {
            let (program, args) = command
                .split_first()
                .ok_or_else(|| "`command` is empty".to_string())?;
            let mut process = tokio::process::Command::new(program);
            process.args(args).env_clear().kill_on_drop(true);
            if let Some(path) = std::env::var_os("PATH") {
                process.env("PATH", path);
            }
            process.envs(env);
            if let Some(cwd) = cwd {
                process.current_dir(cwd);
            }
            let (transport, stderr) = TokioChildProcess::builder(process)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start `{program}`: {e}"))?;
            if let Some(stderr) = stderr {
                forward_stderr(name.to_string(), stderr);
            }
            handler
                .serve(transport)
                .await
                .map_err(|e| format!("MCP handshake failed: {e}"))
        }
        UpstreamTransport::Http { url, bearer } => {
            // The HTTP client takes TLS from the process-wide provider: ring,
            // as for plugin egress. Installing it twice is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut transport_config = StreamableHttpClientTransportConfig::with_uri(url.clone());
            if let Some(token) = bearer {
                transport_config = transport_config.auth_header(token.expose().to_string());
            }
            let transport = StreamableHttpClientTransport::from_config(transport_config);
            handler
                .serve(transport)
                .await
                .map_err(|e| format!("MCP handshake with {url} failed: {e}"))
        }
    }
}

/// Longest stderr line of a child server that is logged; the rest of a
/// longer line is skipped, never buffered.
const STDERR_LINE_MAX: usize = 4096;

/// Logs what a child server writes to stderr, line by line, each line
/// bounded and logged as an escaped field (a line cannot forge log lines).
fn forward_stderr(upstream: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(stderr);
        let mut line = Vec::with_capacity(256);
        let mut skipping = false;
        loop {
            line.clear();
            let limit = (STDERR_LINE_MAX + 1) as u64;
            match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let complete = line.last() == Some(&b'\n');
            if !skipping {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                if complete {
                    tracing::info!(upstream = %upstream, line = ?text, "upstream stderr");
                } else {
                    tracing::info!(upstream = %upstream, line = ?text, "upstream stderr (line cut at {STDERR_LINE_MAX} bytes)");
                }
            }
            skipping = !complete;
        }
    });
}
