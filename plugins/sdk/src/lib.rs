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
    /// names it, in document order. Object keys are not included (see
    /// [`json_text`]). A document that is itself a string yields one entry
    /// with the pointer "".
    pub fn json_strings(content: &str) -> Result<Vec<(String, String)>, String> {
        json_text(content).map(|text| text.strings)
    }

    /// The text of a JSON document: its strings, as [`json_strings`] gives
    /// them, and its object keys.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct JsonText {
        /// Every string value with its JSON Pointer, in document order.
        pub strings: Vec<(String, String)>,
        /// Every object key, in document order. A key has no JSON Pointer
        /// of its own (a pointer names the member's value), so a finding in
        /// a key carries no location; its message must not name the member
        /// either, since the member's pointer spells the key.
        pub keys: Vec<String>,
    }

    /// The strings and the object keys of `content` (JSON text). A caller
    /// chooses its arguments' keys when the schema allows any, so a check
    /// that reads only values can be walked around.
    pub fn json_text(content: &str) -> Result<JsonText, String> {
        let document: serde_json::Value =
            serde_json::from_str(content).map_err(|e| format!("content is not JSON: {e}"))?;
        let mut text = JsonText::default();
        collect(document, &mut String::new(), &mut text);
        Ok(text)
    }

    fn collect(value: serde_json::Value, pointer: &mut String, out: &mut JsonText) {
        let at = pointer.len();
        match value {
            serde_json::Value::String(text) => out.strings.push((pointer.clone(), text)),
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
                    out.keys.push(key);
                    collect(item, pointer, out);
                    pointer.truncate(at);
                }
            }
            _ => {}
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{json_strings, json_text};

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

        #[test]
        fn keys_come_in_document_order() {
            let text = json_text(r#"{"a/b":["x",{"c~d":"y"}],"n":{"m":1}}"#).unwrap();
            assert_eq!(text.keys, ["a/b", "c~d", "n", "m"]);
            assert_eq!(text.strings.len(), 2);
        }
    }
}
