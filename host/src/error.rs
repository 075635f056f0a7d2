//! Errors: load-time failures ([`Error`]) and per-call failures ([`CallError`]).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// A failure while loading configuration, plugins, policies or the audit store.
///
/// Every variant names the file, plugin or store involved so an operator can
/// fix it without reading host code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration or manifest file is malformed or has an invalid field.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A plugin could not be loaded.
    #[error("plugin `{plugin}`: {message}")]
    Plugin {
        /// The plugin's name in the host configuration.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// An upstream MCP server could not be reached or described its tools badly.
    #[error("upstream `{upstream}`: {message}")]
    Upstream {
        /// The upstream's name in the host configuration.
        upstream: String,
        /// What is wrong.
        message: String,
    },
    /// The policy bundle could not be loaded or compiled.
    #[error("policy bundle {dir}: {message}")]
    Policy {
        /// The bundle directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The audit store could not be opened, migrated or read.
    #[error("audit store: {0}")]
    Audit(String),
    /// The sandbox engine could not be set up.
    #[error("sandbox: {0}")]
    Sandbox(String),
}

/// Shorthand for results of load-time operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable, machine-readable codes for every way a call can fail.
///
/// These strings are part of Warden's API: HTTP responses, CLI output and
/// audit records carry them, and they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The request itself is malformed (not JSON, wrong envelope).
    InvalidRequest,
    /// No valid credentials were presented.
    Unauthenticated,
    /// The principal may not use this endpoint.
    Forbidden,
    /// No tool has the requested name.
    UnknownTool,
    /// The session named is not an open session of this principal on this host.
    UnknownSession,
    /// The arguments do not satisfy the tool's input schema.
    InvalidArgs,
    /// Policy denied the call.
    PolicyDenied,
    /// Policy could not be evaluated; the call is denied.
    PolicyError,
    /// Policy requires approval before the call may run.
    PendingApproval,
    /// The tool rejected its input.
    ToolInvalidInput,
    /// The tool reported a failure.
    ToolFailed,
    /// The tool reported a temporary failure; the call may be retried.
    ToolTransient,
    /// The plugin tried to use a capability it was not granted.
    CapabilityDenied,
    /// The call ran past its time limit.
    Timeout,
    /// The call used up its fuel (`limits.fuel_per_call`).
    FuelExhausted,
    /// The plugin is already running its maximum number of concurrent calls.
    PluginBusy,
    /// The plugin tried to use more memory than its limit.
    MemoryLimit,
    /// The plugin tried to write past its disk quota (`grants.disk_quota_mb`).
    DiskQuota,
    /// The plugin trapped (panic, stack overflow, invalid operation).
    Trap,
    /// The tool's output is not valid JSON or violates its output schema.
    InvalidOutput,
    /// The tool's output is larger than allowed.
    OutputTooLarge,
    /// An upstream MCP server could not be reached or dropped the call.
    UpstreamUnavailable,
    /// The audit record could not be written; the call is denied.
    AuditUnavailable,
    /// An unexpected host failure.
    Internal,
}

impl ErrorCode {
    /// The stable string form, e.g. `policy-denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid-request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UnknownTool => "unknown-tool",
            ErrorCode::UnknownSession => "unknown-session",
            ErrorCode::InvalidArgs => "invalid-args",
            ErrorCode::PolicyDenied => "policy-denied",
            ErrorCode::PolicyError => "policy-error",
            ErrorCode::PendingApproval => "pending-approval",
            ErrorCode::ToolInvalidInput => "tool-invalid-input",
            ErrorCode::ToolFailed => "tool-failed",
            ErrorCode::ToolTransient => "tool-transient",
            ErrorCode::CapabilityDenied => "capability-denied",
            ErrorCode::Timeout => "timeout",
            ErrorCode::FuelExhausted => "fuel-exhausted",
            ErrorCode::PluginBusy => "plugin-busy",
            ErrorCode::MemoryLimit => "memory-limit",
            ErrorCode::DiskQuota => "disk-quota",
            ErrorCode::Trap => "trap",
            ErrorCode::InvalidOutput => "invalid-output",
            ErrorCode::OutputTooLarge => "output-too-large",
            ErrorCode::UpstreamUnavailable => "upstream-unavailable",
            ErrorCode::AuditUnavailable => "audit-unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call did not produce an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation naming what was wrong and where.
    pub message: String,
    /// Policy reasons, for denials.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Milliseconds to wait before retrying, for transient failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u32>,
}

impl CallError {
    /// An error with a code and message and no reasons.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CallError {
            code,
            message: message.into(),
            reasons: Vec::new(),
            retry_after_ms: None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        for reason in &self.reasons {
            write!(f, "\n  - {reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CallError {}
