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

/// Bindings for provider adapters: components that translate Warden's chat
/// requests into one LLM provider's HTTP API and its answers back (the
/// `provider` world). An adapter is a pure translator: the host owns the
/// transport, the origin and the credential.
///
/// An adapter implements [`provider::Guest`] (`info`, `encode-request`,
/// `decode-response`, `decode-event`) and registers it with
/// [`provider::export_provider!`](crate::provider::export_provider).
///
/// ```ignore
/// struct OpenAi;
/// impl warden_plugin_sdk::provider::Guest for OpenAi { /* ... */ }
/// warden_plugin_sdk::provider::export_provider!(OpenAi);
/// ```
pub mod provider {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "provider",
        pub_export_macro: true,
        export_macro_name: "export_provider",
        default_bindings_module: "warden_plugin_sdk::provider",
        additional_derives: [PartialEq],
    });

    pub use exports::warden::plugin::adapter::{
        AdapterError, AdapterInfo, ChatRequest, ChatResponse, Choice, Chunk, ContentPart,
        Credential, EmbeddingsRequest, EmbeddingsResponse, FinishReason, Framing, FunctionTool,
        Guest, HttpRequest, HttpResponse, JsonSchemaFormat, Message, ResponseFormat, Role,
        StreamEvent, ToolCall, ToolCallDelta, ToolChoice, UpstreamError, Usage,
    };

    /// The most bytes of a provider's body an error message quotes.
    pub const SNIPPET_BYTES: usize = 200;

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// How long the provider asks the caller to wait, in milliseconds: the
    /// `retry-after-ms` header (milliseconds) if it parses, else
    /// `retry-after` (seconds). Both may be fractional; anything but digits
    /// with at most one `.` (an HTTP date, a negative number, `inf`) is
    /// ignored. Rounded up, capped at `u32::MAX`.
    pub fn retry_after_ms(headers: &[(String, String)]) -> Option<u32> {
        let from_ms = header(headers, "retry-after-ms").and_then(|value| decimal(value, 1.0));
        from_ms.or_else(|| header(headers, "retry-after").and_then(|value| decimal(value, 1000.0)))
    }

    /// `value` (digits with at most one `.`) times `scale`, rounded up and
    /// capped at `u32::MAX`.
    fn decimal(value: &str, scale: f64) -> Option<u32> {
        let value = value.trim();
        let digits = value.bytes().filter(u8::is_ascii_digit).count();
        let dots = value.bytes().filter(|&b| b == b'.').count();
        if digits == 0 || dots > 1 || digits + dots != value.len() {
            return None;
        }
        let number: f64 = value.parse().ok()?;
        // Only digits and a dot: never negative or NaN, at worst infinite,
        // and `as` saturates, so an absurd delay becomes u32::MAX.
        Some((number * scale).ceil() as u32)
    }

    /// `text` on one line and at most `max` bytes: control characters
    /// become spaces, and a longer text is cut at a character boundary and
    /// ends with `…` (counted in the `max`).
    pub fn clip(text: &str, max: usize) -> String {
        const MARK: &str = "…";
        let fits = text.len() <= max;
        let budget = if fits {
            max
        } else {
            max.saturating_sub(MARK.len())
        };
        let mut out = String::with_capacity(budget.min(text.len()) + MARK.len());
        for c in text.chars() {
            if out.len() + c.len_utf8() > budget {
                break;
            }
            out.push(if c.is_control() { ' ' } else { c });
        }
        if !fits && out.len() + MARK.len() <= max {
            out.push_str(MARK);
        }
        out
    }

    /// The most bytes of a provider's error message an adapter passes on.
    pub const MESSAGE_BYTES: usize = 1024;
    /// The most bytes of a provider's error type or code an adapter passes on.
    pub const KIND_BYTES: usize = 128;

    /// A `malformed` error saying `what`, bounded.
    pub fn malformed(what: &str) -> AdapterError {
        AdapterError::Malformed(clip(what, MESSAGE_BYTES))
    }

    /// An `upstream` error: the provider's `kind` (by default `http_<status>`)
    /// and `message`, bounded.
    pub fn upstream(
        status: u16,
        kind: Option<&str>,
        message: &str,
        retry_after_ms: Option<u32>,
    ) -> AdapterError {
        let kind = kind.map_or_else(|| format!("http_{status}"), str::to_string);
        AdapterError::Upstream(UpstreamError {
            status,
            kind: clip(&kind, KIND_BYTES),
            message: clip(message, MESSAGE_BYTES),
            retry_after_ms,
        })
    }

    /// A JSON number as a `u32`: saturating, 0 for anything that is not a
    /// non-negative number (token counts, indexes).
    pub fn count(value: Option<&serde_json::Value>) -> u32 {
        match value {
            Some(serde_json::Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
                (Some(v), _) => u32::try_from(v).unwrap_or(u32::MAX),
                // `as` saturates and maps NaN to 0; negative numbers become 0.
                (None, Some(v)) => v as u32,
                (None, None) => 0,
            },
            _ => 0,
        }
    }

    /// The start of a body, for an error message: at most
    /// [`SNIPPET_BYTES`] bytes, invalid UTF-8 replaced, on one line.
    pub fn snippet(body: &[u8]) -> String {
        // Look at a little more than the budget, so `clip` marks the cut.
        let head = body.get(..SNIPPET_BYTES + 4).unwrap_or(body);
        clip(&String::from_utf8_lossy(head), SNIPPET_BYTES)
    }

    #[cfg(test)]
    mod tests {
        use super::{SNIPPET_BYTES, clip, header, retry_after_ms, snippet};

        fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }

        #[test]
        fn retry_after_reads_seconds_and_milliseconds() {
            assert_eq!(
                retry_after_ms(&headers(&[("retry-after", "7")])),
                Some(7000)
            );
            assert_eq!(
                retry_after_ms(&headers(&[("retry-after", " 1.5 ")])),
                Some(1500)
            );
            assert_eq!(
                retry_after_ms(&headers(&[("retry-after", "0.0001")])),
                Some(1)
            );
            assert_eq!(
                retry_after_ms(&headers(&[("Retry-After", "2")])),
                Some(2000)
            );
            assert_eq!(
                retry_after_ms(&headers(&[("retry-after-ms", "250.2")])),
                Some(251)
            );
            // The millisecond header wins over the second one.
            let both = headers(&[("retry-after", "9"), ("retry-after-ms", "120")]);
            assert_eq!(retry_after_ms(&both), Some(120));
            // An unreadable millisecond header falls back to seconds.
            let bad_ms = headers(&[("retry-after-ms", "soon"), ("retry-after", "3")]);
            assert_eq!(retry_after_ms(&bad_ms), Some(3000));
        }

        #[test]
        fn retry_after_ignores_what_is_not_a_delay() {
            for value in [
                "",
                ".",
                "-1",
                "+1",
                "1e3",
                "inf",
                "NaN",
                "1.2.3",
                "Wed, 21 Oct 2015 07:28:00 GMT",
                "5 s",
            ] {
                assert_eq!(
                    retry_after_ms(&headers(&[("retry-after", value)])),
                    None,
                    "{value:?}"
                );
            }
            assert_eq!(retry_after_ms(&headers(&[("x-other", "5")])), None);
            let huge = "9".repeat(400);
            assert_eq!(
                retry_after_ms(&headers(&[("retry-after", &huge)])),
                Some(u32::MAX)
            );
            assert_eq!(
                retry_after_ms(&headers(&[("retry-after", "4294968")])),
                Some(u32::MAX)
            );
        }

        #[test]
        fn header_is_case_insensitive_and_takes_the_first() {
            let list = headers(&[("X-A", "1"), ("x-a", "2")]);
            assert_eq!(header(&list, "x-a"), Some("1"));
            assert_eq!(header(&list, "x-b"), None);
        }

        #[test]
        fn clip_bounds_bytes_on_a_char_boundary() {
            assert_eq!(clip("short", 10), "short");
            assert_eq!(clip("a\nb\u{1b}[0m", 20), "a b [0m");
            let long = "é".repeat(100);
            let clipped = clip(&long, 11);
            assert!(clipped.len() <= 11, "{}", clipped.len());
            assert_eq!(clipped, "éééé…");
            assert_eq!(clip("abcdef", 2), "");
            assert_eq!(clip("abcdef", 0), "");
        }

        #[test]
        fn snippet_is_bounded_and_lossy() {
            let body = vec![b'x'; 100_000];
            let quoted = snippet(&body);
            assert!(quoted.len() <= SNIPPET_BYTES);
            assert!(quoted.ends_with('…'));
            assert_eq!(snippet(b"ok\xff"), "ok\u{fffd}");
        }
    }
}
