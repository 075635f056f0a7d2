//! `kv`: small text values in the host's key-value state
//! (`warden:plugin/kv`), which the host scopes to this plugin and to the
//! caller's tenant and bounds by the operator's quota.
//!
//! The plugin checks nothing itself: scoping, quotas and sizes are the
//! host's job, and the tests prove they hold. `set_quietly` claims no side
//! effects but writes anyway, to show the host holds such a tool to reads.

use serde::Deserialize;
use serde_json::json;
use warden_plugin_sdk::kv::{self, KvError};
use warden_plugin_sdk::{Guest, ToolDescriptor, ToolError, descriptor, output, parse_args};

struct Kv;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Prefix {
    #[serde(default)]
    prefix: String,
}

/// The host's refusal, passed on as the tool's failure.
fn failed(error: KvError) -> ToolError {
    match error {
        KvError::Unavailable(m) => ToolError::Transient(warden_plugin_sdk::TransientError {
            message: m,
            retry_after_ms: None,
        }),
        KvError::Denied(m) | KvError::Invalid(m) | KvError::QuotaExceeded(m) => {
            ToolError::Failed(m)
        }
    }
}

fn key_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {"key": {"type": "string"}},
        "required": ["key"],
        "additionalProperties": false
    })
}

fn entry_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
        "required": ["key", "value"],
        "additionalProperties": false
    })
}

impl Guest for Kv {
    fn describe() -> Vec<ToolDescriptor> {
        vec![
            descriptor(
                "set",
                "Stores a text value under a key, replacing what was there.",
                entry_schema(),
                json!({"type": "object", "properties": {"stored": {"type": "boolean"}}}),
                true,
            ),
            descriptor(
                "get",
                "Reads the value stored under a key; null when there is none.",
                key_schema(),
                json!({"type": "object", "properties": {"value": {"type": ["string", "null"]}}}),
                false,
            ),
            descriptor(
                "delete",
                "Removes a key; says whether it was there.",
                key_schema(),
                json!({"type": "object", "properties": {"deleted": {"type": "boolean"}}}),
                true,
            ),
            descriptor(
                "list",
                "Lists the keys that start with a prefix.",
                json!({
                    "type": "object",
                    "properties": {"prefix": {"type": "string"}},
                    "additionalProperties": false
                }),
                json!({"type": "object", "properties": {"keys": {"type": "array", "items": {"type": "string"}}}}),
                false,
            ),
            descriptor(
                "set_quietly",
                "Claims to change nothing, but stores a value (a test fixture).",
                entry_schema(),
                json!({"type": "object", "properties": {"stored": {"type": "boolean"}}}),
                false,
            ),
        ]
    }

    fn invoke(name: String, args: String) -> Result<String, ToolError> {
        match name.as_str() {
            "set" | "set_quietly" => {
                let entry: Entry = parse_args(&args)?;
                kv::set(&entry.key, entry.value.as_bytes()).map_err(failed)?;
                output(&json!({"stored": true}))
            }
            "get" => {
                let key: Key = parse_args(&args)?;
                let value = kv::get(&key.key).map_err(failed)?;
                let value = value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
                output(&json!({"value": value}))
            }
            "delete" => {
                let key: Key = parse_args(&args)?;
                let deleted = kv::delete(&key.key).map_err(failed)?;
                output(&json!({"deleted": deleted}))
            }
            "list" => {
                let prefix: Prefix = parse_args(&args)?;
                let keys = kv::list_keys(&prefix.prefix).map_err(failed)?;
                output(&json!({"keys": keys}))
            }
            _ => Err(warden_plugin_sdk::unknown_tool(&name)),
        }
    }
}

warden_plugin_sdk::export!(Kv);
