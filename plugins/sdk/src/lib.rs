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

/// Bindings for verifiers: components that examine a call's arguments or
/// output and report findings (the `verifier` world).
///
/// A verifier implements [`verifier::Guest`] (`verify`) and registers it with
/// [`verifier::export_verifier!`](crate::verifier::export_verifier).
///
/// ```ignore
/// struct Secrets;
/// impl warden_plugin_sdk::verifier::Guest for Secrets { /* verify */ }
/// warden_plugin_sdk::verifier::export_verifier!(Secrets);
/// ```
pub mod verifier {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "verifier",
        pub_export_macro: true,
        export_macro_name: "export_verifier",
        default_bindings_module: "warden_plugin_sdk::verifier",
    });

    pub use exports::warden::plugin::verification::{
        Finding, Guest, Location, Redaction, Severity, Source, Stage, Subject, Verdict,
    };

    /// Every string in a JSON document with the JSON Pointer (RFC 6901) that
    /// names it, in document order. Object keys are not included. A document
    /// that is itself a string yields one entry with the pointer "".
    pub fn json_strings(content: &str) -> Result<Vec<(String, String)>, String> {
        let document: serde_json::Value =
            serde_json::from_str(content).map_err(|e| format!("content is not JSON: {e}"))?;
        let mut strings = Vec::new();
        collect(document, &mut String::new(), &mut strings);
        Ok(strings)
    }

    fn collect(value: serde_json::Value, pointer: &mut String, out: &mut Vec<(String, String)>) {
        let at = pointer.len();
        match value {
            serde_json::Value::String(text) => out.push((pointer.clone(), text)),
            serde_json::Value::Array(items) => {
                for (index, item) in items.into_iter().enumerate() {
                    pointer.push('/');
                    pointer.push_str(&index.to_string());
                    collect(item, pointer, out);
                    pointer.truncate(at);
                }
            }
            serde_json::Value::Object(fields) => {
                for (key, item) in fields {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    collect(item, pointer, out);
                    pointer.truncate(at);
                }
            }
            _ => {}
        }
    }

    #[cfg(test)]
    mod tests {
        use super::json_strings;

        #[test]
        fn strings_come_with_their_pointers() {
            let strings = json_strings(r#"{"a/b":["x",{"c~d":"y"}],"n":1,"s":"z"}"#).unwrap();
            let expected = [("/a~1b/0", "x"), ("/a~1b/1/c~0d", "y"), ("/s", "z")];
            let got: Vec<(&str, &str)> = strings
                .iter()
                .map(|(p, s)| (p.as_str(), s.as_str()))
                .collect();
            assert_eq!(got, expected);
            assert_eq!(
                json_strings(r#""top""#).unwrap(),
                [(String::new(), "top".to_string())]
            );
        }
    }
}
