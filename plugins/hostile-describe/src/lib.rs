//! `hostile-describe`: a test fixture whose descriptors attack the host, in
//! the mode named by the granted `HOSTILE_MODE` variable:
//!
//! - `anyof-bomb`, `oneof-bomb`, `allof-bomb`: an input schema of 19 levels,
//!   each a combinator referring twice to the next (2^19 subschemas once
//!   expanded, from a few hundred bytes);
//! - `output-bomb`: the same in the output schema;
//! - `nested-bomb`: 15 levels of `anyOf` nested in place, no `$ref`;
//! - `remote-ref`: an input schema referring to another document;
//! - `label-flood`: 2,000 labels of 1 KiB;
//! - `bad-label`: a label with a newline and a NUL;
//! - `long-description`: a 1 MiB description;
//! - anything else: one honest tool, `echo`, with a wide (bounded) input
//!   schema, that also answers `{"fail_mb": N}` with an N MiB error message.

use serde_json::{Value, json};
use warden_plugin_sdk::{Guest, ToolDescriptor, ToolError, descriptor};

struct HostileDescribe;

/// `levels` definitions, each `keyword` over two references to the next.
fn doubling(levels: usize, keyword: &str) -> Value {
    let mut defs = serde_json::Map::new();
    for level in 0..levels {
        let next = json!({"$ref": format!("#/$defs/l{}", level + 1)});
        defs.insert(
            format!("l{level}"),
            json!({ keyword: [next.clone(), next] }),
        );
    }
    defs.insert(format!("l{levels}"), json!({"type": "string"}));
    json!({"$defs": defs, "$ref": "#/$defs/l0"})
}

fn nested(levels: usize) -> Value {
    let mut schema = json!({"type": "string"});
    for _ in 0..levels {
        schema = json!({"anyOf": [schema.clone(), schema]});
    }
    schema
}

/// An array of at most 100 strings, each one of 2,000 allowed values: wide,
/// but within the host's bound.
fn wide() -> Value {
    let allowed: Vec<Value> = (0..2_000)
        .map(|i| json!({"const": format!("v{i}")}))
        .collect();
    json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "maxItems": 100, "items": {"anyOf": allowed}},
            "fail_mb": {"type": "integer", "minimum": 0, "maximum": 64}
        },
        "additionalProperties": false
    })
}

fn tool(input: Value, output: Value) -> ToolDescriptor {
    descriptor("echo", "Echoes its arguments.", input, output, false)
}

impl Guest for HostileDescribe {
    fn describe() -> Vec<ToolDescriptor> {
        let any = json!({});
        let mode = std::env::var("HOSTILE_MODE").unwrap_or_default();
        let descriptor = match mode.as_str() {
            "anyof-bomb" => tool(doubling(19, "anyOf"), any),
            "oneof-bomb" => tool(doubling(19, "oneOf"), any),
            "allof-bomb" => tool(doubling(19, "allOf"), any),
            "output-bomb" => tool(any, doubling(19, "anyOf")),
            "nested-bomb" => tool(nested(15), any),
            "remote-ref" => tool(json!({"$ref": "http://127.0.0.1:9/schema.json"}), any),
            "label-flood" => ToolDescriptor {
                labels: (0..2_000)
                    .map(|i| format!("{i:04}{}", "x".repeat(1020)))
                    .collect(),
                ..tool(any.clone(), any)
            },
            "bad-label" => ToolDescriptor {
                labels: vec!["untrusted\ncontent\u{0}".to_string()],
                ..tool(any.clone(), any)
            },
            "long-description" => ToolDescriptor {
                description: "d".repeat(1 << 20),
                ..tool(wide(), any)
            },
            _ => tool(wide(), any),
        };
        vec![descriptor]
    }

    fn invoke(_name: String, args: String) -> Result<String, ToolError> {
        let args: Value = serde_json::from_str(&args).unwrap_or_default();
        match args["fail_mb"].as_u64() {
            Some(mb) if mb > 0 => Err(ToolError::Failed("e".repeat((mb as usize) << 20))),
            _ => Ok(args.to_string()),
        }
    }
}

warden_plugin_sdk::export!(HostileDescribe);
