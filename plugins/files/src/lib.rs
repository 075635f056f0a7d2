//! `files`: lists and reads files inside the directory the operator granted,
//! which the sandbox mounts at `/data`.
//!
//! The plugin does no path checking of its own on purpose: containment is the
//! host's job, and the tests prove it holds even for a plugin that tries.

use std::io::Read;

use serde::Deserialize;
use serde_json::json;
use warden_plugin_sdk::{Guest, ToolDescriptor, ToolError, descriptor, output, parse_args};

const ROOT: &str = "/data";
const DEFAULT_MAX_BYTES: u64 = 64 * 1024;

struct Files;

#[derive(Deserialize)]
struct ListArgs {
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    #[serde(default)]
    max_bytes: Option<u64>,
}

/// Relative paths are taken from the granted root; absolute ones are passed on as given.
fn resolve(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{ROOT}/{path}")
    }
}

fn io_error(path: &str, e: std::io::Error) -> ToolError {
    ToolError::Failed(format!("{path}: {e}"))
}

impl Guest for Files {
    fn describe() -> Vec<ToolDescriptor> {
        vec![
            descriptor(
                "list",
                "Lists the entries of a directory inside the granted data directory.",
                json!({
                    "type": "object",
                    "properties": {"path": {"type": "string", "maxLength": 4096}},
                    "additionalProperties": false
                }),
                json!({
                    "type": "object",
                    "properties": {
                        "entries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "kind": {"enum": ["file", "dir", "other"]},
                                    "size": {"type": "integer"}
                                },
                                "required": ["name", "kind", "size"]
                            }
                        }
                    },
                    "required": ["entries"]
                }),
                false,
            ),
            descriptor(
                "read",
                "Reads a UTF-8 text file inside the granted data directory.",
                json!({
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "minLength": 1, "maxLength": 4096},
                        "max_bytes": {"type": "integer", "minimum": 1, "maximum": 1048576}
                    },
                    "required": ["path"],
                    "additionalProperties": false
                }),
                json!({
                    "type": "object",
                    "properties": {
                        "content": {"type": "string"},
                        "truncated": {"type": "boolean"}
                    },
                    "required": ["content", "truncated"]
                }),
                false,
            ),
        ]
    }

    fn invoke(name: String, args: String) -> Result<String, ToolError> {
        match name.as_str() {
            "list" => {
                let a: ListArgs = parse_args(&args)?;
                let path = resolve(a.path.as_deref().unwrap_or("."));
                let mut entries = Vec::new();
                for entry in std::fs::read_dir(&path).map_err(|e| io_error(&path, e))? {
                    let entry = entry.map_err(|e| io_error(&path, e))?;
                    let meta = entry.metadata().map_err(|e| io_error(&path, e))?;
                    let kind = if meta.is_dir() {
                        "dir"
                    } else if meta.is_file() {
                        "file"
                    } else {
                        "other"
                    };
                    entries.push(json!({
                        "name": entry.file_name().to_string_lossy(),
                        "kind": kind,
                        "size": meta.len(),
                    }));
                }
                entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                output(&json!({ "entries": entries }))
            }
            "read" => {
                let a: ReadArgs = parse_args(&args)?;
                let path = resolve(&a.path);
                let max = a.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
                let file = std::fs::File::open(&path).map_err(|e| io_error(&path, e))?;
                let mut bytes = Vec::new();
                file.take(max + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| io_error(&path, e))?;
                let truncated = bytes.len() as u64 > max;
                bytes.truncate(max as usize);
                let content = String::from_utf8(bytes)
                    .map_err(|_| ToolError::Failed(format!("{path}: not UTF-8 text")))?;
                output(&json!({ "content": content, "truncated": truncated }))
            }
            other => Err(warden_plugin_sdk::unknown_tool(other)),
        }
    }
}

warden_plugin_sdk::export!(Files);
