//! Run: what serves a target's calls. Each kind of component — a plugin's
//! tool in a fresh sandbox, an upstream MCP server's tool, and next verifiers
//! and provider adapters — is a [`Backend`]. The registry holds tools by
//! their backend, and the kernel and the faces see only this trait: adding a
//! kind is one implementation, not a new arm in every `match`.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::Value;

use crate::audit::AuditStore;
use crate::capabilities::Effective;
use crate::error::CallError;
use crate::principal::Principal;

/// Who provides a target, as policy input (`input.target`) and audit
/// records name it.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Name in the host configuration; the prefix of its tools' names.
    pub name: String,
    /// The provider's own version (a plugin's manifest, an upstream's
    /// `serverInfo`), or empty when it gave none.
    pub version: String,
    /// SHA-256 of the plugin's component; `None` for upstreams.
    pub sha256: Option<String>,
    /// The upstream MCP server, for gateway tools.
    pub upstream: Option<UpstreamIdentity>,
    /// [`Provider::upstream`] as compact JSON, for audit records.
    pub upstream_json: Option<String>,
}

/// Who an upstream is, as recorded with each of its calls.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamIdentity {
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// The command line or URL.
    pub endpoint: String,
    /// `serverInfo.name` from its `initialize` answer.
    pub server_name: Option<String>,
    /// `serverInfo.version` from its `initialize` answer.
    pub server_version: Option<String>,
    /// The protocol revision negotiated.
    pub protocol_version: String,
}

/// The shape of a backend's successful output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputForm {
    /// The tool's own JSON document, valid against its output schema.
    #[default]
    Document,
    /// An MCP tool result, `{"content": [...], "structuredContent": ...}`,
    /// as an upstream answered it.
    McpResult,
}

/// One call as a backend receives it.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The tool's name inside its provider.
    pub tool: &'a str,
    /// The arguments, already decided on and validated.
    pub args: &'a Value,
    /// The capabilities and limits this call runs with (policy may have
    /// narrowed the provider's).
    pub capabilities: &'a Effective,
    /// Who called.
    pub principal: &'a Principal,
    /// The database capabilities keep state in (the audit store).
    pub store: &'a AuditStore,
    /// The caller's trace context, for backends that pass it on.
    pub trace: Option<&'a crate::trace::TraceParent>,
}

/// What one attempt produced.
#[derive(Debug)]
pub struct Ran {
    /// The output as JSON text, or why there is none.
    pub output: Result<String, CallError>,
    /// What the sandbox refused the call, even when the component went on.
    pub refusals: Vec<String>,
}

/// A future a backend returns; boxed so that backends can be trait objects.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Anything that can run a target's calls.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Who provides the target.
    fn provider(&self) -> &Provider;

    /// The capabilities and limits its calls run with.
    fn capabilities(&self) -> &Effective;

    /// One permit per call allowed to run at once.
    fn slots(&self) -> &tokio::sync::Semaphore;

    /// The shape of its outputs.
    fn output_form(&self) -> OutputForm;

    /// Runs one attempt of a call. Time and memory limits are the
    /// backend's to enforce; concurrency and retries are the kernel's.
    fn invoke<'a>(&'a self, call: Invocation<'a>) -> BoxFuture<'a, Ran>;
}
