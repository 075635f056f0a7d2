//! Bindings and helpers for writing Warden tool plugins in Rust.
//!
//! A plugin implements [`Guest`] (`describe` + `invoke`) and registers it with
//! [`export!`]; it may call the host's [`log`] and, when granted, [`kv`]
//! (key-value state scoped to the plugin and the caller's tenant). It is built
//! with `cargo build --release --target wasm32-wasip2`, which produces a
//! component ready for the host.
//!
//! ```ignore
//! struct Upper;
//! impl warden_plugin_sdk::Guest for Upper { /* describe, invoke */ }
//! warden_plugin_sdk::export!(Upper);
//! ```

wit_bindgen::generate!({
    path: "../../wit",
    world: "tool",
    pub_export_macro: true,
    default_bindings_module: "warden_plugin_sdk",
});

pub use exports::warden::plugin::tools::Guest;
pub use warden::plugin::kv;
pub use warden::plugin::log::{Level, log};
pub use warden::plugin::types::{ToolDescriptor, ToolError, TransientError};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Builds a [`ToolDescriptor`] from JSON Schema values, with no session labels
/// (set `labels` on the result to add some).
pub fn descriptor(
    name: &str,
    description: &str,
    input_schema: serde_json::Value,
    output_schema: serde_json::Value,
    side_effects: bool,
) -> ToolDescriptor {
    ToolDescriptor {
        name: name.to_string(),
        description: description.to_string(),
        input_schema: input_schema.to_string(),
        output_schema: output_schema.to_string(),
        side_effects,
        labels: Vec::new(),
    }
}

/// Parses the JSON arguments of a call into `T`, mapping failures to `invalid-input`.
pub fn parse_args<T: DeserializeOwned>(args: &str) -> Result<T, ToolError> {
    serde_json::from_str(args).map_err(|e| ToolError::InvalidInput(format!("arguments: {e}")))
}

/// Serialises a tool's output to JSON text.
pub fn output<T: Serialize>(value: &T) -> Result<String, ToolError> {
    serde_json::to_string(value).map_err(|e| ToolError::Failed(format!("serialising output: {e}")))
}

/// The error for a tool name this plugin does not offer.
pub fn unknown_tool(name: &str) -> ToolError {
    ToolError::InvalidInput(format!("unknown tool `{name}`"))
}
