//! `text`: pure text and JSON utilities. Needs no capability at all.

use serde::Deserialize;
use serde_json::{Value, json};
use warden_plugin_sdk::{Guest, ToolDescriptor, ToolError, descriptor, output, parse_args};

struct Text;

#[derive(Deserialize)]
struct TransformArgs {
    text: String,
    op: String,
}

#[derive(Deserialize)]
struct StatsArgs {
    text: String,
}

#[derive(Deserialize)]
struct PointerArgs {
    document: Value,
    pointer: String,
}

impl Guest for Text {
    fn describe() -> Vec<ToolDescriptor> {
        vec![
            descriptor(
                "transform",
                "Transforms text: upper, lower, reverse or trim.",
                json!({
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "maxLength": 1048576},
                        "op": {"enum": ["upper", "lower", "reverse", "trim"]}
                    },
                    "required": ["text", "op"],
                    "additionalProperties": false
                }),
                json!({
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"]
                }),
                false,
            ),
            descriptor(
                "stats",
                "Counts characters, words and lines in a text.",
                json!({
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                    "additionalProperties": false
                }),
                json!({
                    "type": "object",
                    "properties": {
                        "chars": {"type": "integer"},
                        "words": {"type": "integer"},
                        "lines": {"type": "integer"}
                    },
                    "required": ["chars", "words", "lines"]
                }),
                false,
            ),
            descriptor(
                "json_pointer",
                "Looks up an RFC 6901 JSON Pointer in a JSON document.",
                json!({
                    "type": "object",
                    "properties": {
                        "document": {},
                        "pointer": {"type": "string"}
                    },
                    "required": ["document", "pointer"],
                    "additionalProperties": false
                }),
                json!({
                    "type": "object",
                    "properties": {"found": {"type": "boolean"}, "value": {}},
                    "required": ["found"]
                }),
                false,
            ),
        ]
    }

    fn invoke(name: String, args: String) -> Result<String, ToolError> {
        match name.as_str() {
            "transform" => {
                let a: TransformArgs = parse_args(&args)?;
                let text = match a.op.as_str() {
                    "upper" => a.text.to_uppercase(),
                    "lower" => a.text.to_lowercase(),
                    "reverse" => a.text.chars().rev().collect(),
                    "trim" => a.text.trim().to_string(),
                    other => return Err(ToolError::InvalidInput(format!("unknown op `{other}`"))),
                };
                output(&json!({ "text": text }))
            }
            "stats" => {
                let a: StatsArgs = parse_args(&args)?;
                output(&json!({
                    "chars": a.text.chars().count(),
                    "words": a.text.split_whitespace().count(),
                    "lines": a.text.lines().count(),
                }))
            }
            "json_pointer" => {
                let a: PointerArgs = parse_args(&args)?;
                match a.document.pointer(&a.pointer) {
                    Some(value) => output(&json!({ "found": true, "value": value })),
                    None => output(&json!({ "found": false })),
                }
            }
            other => Err(warden_plugin_sdk::unknown_tool(other)),
        }
    }
}

warden_plugin_sdk::export!(Text);
