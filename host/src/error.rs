//! Errors: load-time failures ([`Error`]) and per-call failures ([`CallError`]).

use std::fmt;
use std::path::PathBuf;

use http::StatusCode;
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
    /// A verifier could not be loaded.
    #[error("verifier `{verifier}`: {message}")]
    Verifier {
        /// The verifier's name in the host configuration.
        verifier: String,
        /// What is wrong.
        message: String,
    },
    /// A provider adapter could not be loaded.
    #[error("adapter `{adapter}`: {message}")]
    Adapter {
        /// The adapter's name in the host configuration.
        adapter: String,
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

/// JSON-RPC error codes MCP uses for a request that fails before any tool runs.
pub mod jsonrpc {
    /// The request is not valid (JSON-RPC `Invalid Request`).
    pub const INVALID_REQUEST: i32 = -32600;
    /// The request's parameters are not valid (JSON-RPC `Invalid params`).
    pub const INVALID_PARAMS: i32 = -32602;
    /// The server failed (JSON-RPC `Internal error`).
    pub const INTERNAL_ERROR: i32 = -32603;
}

/// What every face says about one [`ErrorCode`]: one row of the table in
/// [`ErrorCode::row`], which `docs/errors.md` mirrors (a unit test compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRow {
    /// The stable string form, e.g. `policy-denied`.
    pub code: &'static str,
    /// The HTTP API's status.
    pub http: StatusCode,
    /// `warden call`'s exit code.
    pub exit: u8,
    /// The JSON-RPC error code when an MCP request fails with this code
    /// before any tool runs. Inside `tools/call` every code is a tool result
    /// with `isError: true` that carries the code.
    pub mcp: i32,
    /// One line for `docs/errors.md`.
    pub doc: &'static str,
}

/// Declares [`ErrorCode`] and its table together, so a code cannot exist
/// without its row (and [`ErrorCode::ALL`] cannot miss one).
macro_rules! error_codes {
    ($(
        $(#[doc = $variant_doc:literal])*
        $variant:ident => $code:literal, $http:ident, exit $exit:literal, mcp $mcp:ident,
            $doc:literal;
    )*) => {
        /// Stable, machine-readable codes for every way a call can fail.
        ///
        /// These strings are part of Warden's API: HTTP responses, CLI output and
        /// audit records carry them, and they never change meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum ErrorCode {
            $( $(#[doc = $variant_doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant),*];

            /// This code's row: its string, HTTP status, exit code, MCP error and doc line.
            pub fn row(self) -> ErrorRow {
                match self {
                    $(ErrorCode::$variant => ErrorRow {
                        code: $code,
                        http: StatusCode::$http,
                        exit: $exit,
                        mcp: jsonrpc::$mcp,
                        doc: $doc,
                    },)*
                }
            }
        }
    };
}

error_codes! {
    /// The request itself is malformed (not JSON, wrong envelope).
    InvalidRequest => "invalid-request", BAD_REQUEST, exit 4, mcp INVALID_REQUEST,
        "malformed request body";
    /// No valid credentials were presented.
    Unauthenticated => "unauthenticated", UNAUTHORIZED, exit 2, mcp INVALID_REQUEST,
        "missing or unknown bearer token";
    /// The principal may not use this endpoint.
    Forbidden => "forbidden", FORBIDDEN, exit 2, mcp INVALID_REQUEST,
        "the principal may not use this endpoint (e.g. `/v1/audit` without the `auditor` role)";
    /// No tool has the requested name.
    UnknownTool => "unknown-tool", NOT_FOUND, exit 4, mcp INVALID_PARAMS,
        "no tool by that name";
    /// The session named is not an open session of this principal on this host.
    UnknownSession => "unknown-session", NOT_FOUND, exit 4, mcp INVALID_PARAMS,
        "the `session` is not an open session of this principal on this host (sessions are \
         minted by `POST /v1/sessions`)";
    /// The arguments do not satisfy the tool's input schema.
    InvalidArgs => "invalid-args", UNPROCESSABLE_ENTITY, exit 4, mcp INVALID_PARAMS,
        "arguments violate the input schema (message names the JSON path)";
    /// Policy denied the call.
    PolicyDenied => "policy-denied", FORBIDDEN, exit 3, mcp INTERNAL_ERROR,
        "policy denied; `reasons` says why";
    /// Policy could not be evaluated; the call is denied.
    PolicyError => "policy-error", INTERNAL_SERVER_ERROR, exit 3, mcp INTERNAL_ERROR,
        "policy could not be evaluated; denied";
    /// Policy requires approval before the call may run.
    PendingApproval => "pending-approval", FORBIDDEN, exit 3, mcp INTERNAL_ERROR,
        "policy requires approval before the call may run; `reasons` says why";
    /// A budget has no room for the call's worst case.
    BudgetExceeded => "budget-exceeded", TOO_MANY_REQUESTS, exit 3, mcp INTERNAL_ERROR,
        "a budget has no room for the call's worst case (the message names it); \
         `retry_after_ms` says when its period ends";
    /// A rate limit has no room for the call this minute.
    RateLimited => "rate-limited", TOO_MANY_REQUESTS, exit 3, mcp INTERNAL_ERROR,
        "a rate limit (requests or tokens per minute) has no room for the call; retry after \
         `retry_after_ms` (the next minute)";
    /// The spend ledger could not be used, or a money budget applies to a model without prices.
    BudgetUnavailable => "budget-unavailable", SERVICE_UNAVAILABLE, exit 6, mcp INTERNAL_ERROR,
        "the spend ledger could not be reached, or a money budget applies to a model without \
         prices; the call is denied";
    /// The tool rejected its input.
    ToolInvalidInput => "tool-invalid-input", UNPROCESSABLE_ENTITY, exit 5, mcp INTERNAL_ERROR,
        "the tool rejected its input";
    /// The tool reported a failure.
    ToolFailed => "tool-failed", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "the tool reported a failure (an upstream: `isError` or a JSON-RPC error)";
    /// The tool reported a temporary failure; the call may be retried.
    ToolTransient => "tool-transient", SERVICE_UNAVAILABLE, exit 5, mcp INTERNAL_ERROR,
        "temporary tool failure; may retry (`retry_after_ms`)";
    /// The plugin tried to use a capability it was not granted.
    CapabilityDenied => "capability-denied", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "the plugin tried to use a capability it was not granted";
    /// The call ran past its time limit.
    Timeout => "timeout", GATEWAY_TIMEOUT, exit 5, mcp INTERNAL_ERROR,
        "past the plugin's (or upstream's) time limit";
    /// The call used up its fuel (`limits.fuel_per_call`).
    FuelExhausted => "fuel-exhausted", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "past `limits.fuel_per_call`";
    /// The plugin is already running its maximum number of concurrent calls.
    PluginBusy => "plugin-busy", TOO_MANY_REQUESTS, exit 5, mcp INTERNAL_ERROR,
        "the plugin is at its concurrency limit (or, should it ever happen, the engine's \
         instance pool is full); retry later";
    /// The plugin tried to use more memory than its limit.
    MemoryLimit => "memory-limit", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "past the plugin's memory limit";
    /// The plugin tried to write past its disk quota (`grants.disk_quota_mb`).
    DiskQuota => "disk-quota", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "a write, new file, directory or link past `grants.disk_quota_mb` (allocated blocks \
         plus one block per entry), or the directories could not be measured; nothing of it \
         was written";
    /// The plugin trapped (panic, stack overflow, invalid operation).
    Trap => "trap", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "the plugin trapped (panic, stack overflow, bad memory access, more open resources \
         than a call may hold)";
    /// The tool's output is not valid JSON or violates its output schema.
    InvalidOutput => "invalid-output", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "output not JSON or violates the output schema";
    /// The tool's output is larger than allowed.
    OutputTooLarge => "output-too-large", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "output over `limits.output_max_bytes`";
    /// An upstream MCP server could not be reached or dropped the call.
    UpstreamUnavailable => "upstream-unavailable", SERVICE_UNAVAILABLE, exit 5,
        mcp INTERNAL_ERROR,
        "an upstream MCP server could not be reached or dropped the call; the next call \
         reconnects";
    /// No model has the requested name.
    UnknownModel => "unknown-model", NOT_FOUND, exit 4, mcp INVALID_PARAMS,
        "no model by that name (`GET /v1/models` lists those the principal may use)";
    /// The request asks for something the gateway or the model's adapter cannot express.
    UnsupportedRequest => "unsupported-request", BAD_REQUEST, exit 4, mcp INVALID_PARAMS,
        "the chat request asks for something the gateway or the model's adapter cannot \
         express (the message names it)";
    /// The model's provider refused the request as invalid.
    ProviderRejected => "provider-rejected", BAD_REQUEST, exit 5, mcp INTERNAL_ERROR,
        "the model's provider refused the request as invalid (its status and message are \
         quoted)";
    /// The model's provider is rate-limiting; retry later.
    ProviderRateLimited => "provider-rate-limited", TOO_MANY_REQUESTS, exit 5,
        mcp INTERNAL_ERROR,
        "the model's provider is rate-limiting; retry after `retry_after_ms`";
    /// The model's provider could not be reached, timed out or failed (5xx).
    ProviderUnavailable => "provider-unavailable", SERVICE_UNAVAILABLE, exit 5,
        mcp INTERNAL_ERROR,
        "the model's provider could not be reached or failed (5xx); may retry";
    /// The provider's answer, or the adapter's translation of it, was unusable.
    ProviderError => "provider-error", BAD_GATEWAY, exit 5, mcp INTERNAL_ERROR,
        "the provider's answer could not be read, was too large, or refused the host's \
         credential; or the adapter asked for something the host will not send";
    /// The caller went away before the answer was complete (recorded; nobody is left to tell).
    Cancelled => "cancelled", BAD_REQUEST, exit 5, mcp INTERNAL_ERROR,
        "the caller closed the connection before a streamed answer was complete; recorded, \
         never sent";
    /// The audit record could not be written, or the session context kept in the audit
    /// database could not be read; the call is denied.
    AuditUnavailable => "audit-unavailable", SERVICE_UNAVAILABLE, exit 6, mcp INTERNAL_ERROR,
        "the audit record could not be committed, or the session context kept in the audit \
         database could not be read; result withheld";
    /// An unexpected host failure.
    Internal => "internal", INTERNAL_SERVER_ERROR, exit 2, mcp INTERNAL_ERROR,
        "unexpected host failure";
}

impl ErrorCode {
    /// The stable string form, e.g. `policy-denied`.
    pub fn as_str(self) -> &'static str {
        self.row().code
    }

    /// The HTTP API's status for this code.
    pub fn http_status(self) -> StatusCode {
        self.row().http
    }

    /// `warden call`'s exit code for this code.
    pub fn exit_code(self) -> u8 {
        self.row().exit
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/errors.md` lists every code once, with the table's doc line,
    /// HTTP status, exit code and MCP error, and no code the table lacks.
    #[test]
    fn docs_errors_md_matches_the_table() {
        let docs = include_str!("../../docs/errors.md");
        let mut seen = Vec::new();
        for line in docs.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let [code, doc, http, exit, mcp] = cells[..] else {
                panic!("docs/errors.md: expected 5 cells in {line:?}");
            };
            let code = code.trim_matches('`');
            let row = ErrorCode::ALL
                .iter()
                .map(|c| c.row())
                .find(|row| row.code == code)
                .unwrap_or_else(|| panic!("docs/errors.md lists `{code}`, which is no ErrorCode"));
            assert_eq!(
                (doc, http, exit, mcp),
                (
                    row.doc,
                    row.http.as_u16().to_string().as_str(),
                    row.exit.to_string().as_str(),
                    row.mcp.to_string().as_str()
                ),
                "docs/errors.md row of `{code}`"
            );
            assert!(!seen.contains(&code), "docs/errors.md lists `{code}` twice");
            seen.push(code);
        }
        for code in ErrorCode::ALL {
            assert!(
                seen.contains(&code.as_str()),
                "docs/errors.md does not list `{code}`"
            );
        }
    }

    /// The serialized form (HTTP bodies, audit records) is the table's string.
    #[test]
    fn serialized_codes_are_the_table_strings() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        let mut strings: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        strings.sort_unstable();
        strings.dedup();
        assert_eq!(
            strings.len(),
            ErrorCode::ALL.len(),
            "duplicate code strings"
        );
    }
}
