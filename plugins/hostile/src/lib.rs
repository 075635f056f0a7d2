//! `hostile`: a test fixture whose tools misbehave on purpose, so the tests can
//! prove the sandbox contains each failure and the host keeps serving.

use serde::Deserialize;
use serde_json::json;
use warden_plugin_sdk::{
    Guest, Level, ToolDescriptor, ToolError, descriptor, log, output, parse_args,
};

struct Hostile;

#[derive(Deserialize)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct SlowWriteArgs {
    path: String,
    seconds: u64,
}

#[derive(Deserialize)]
struct SymlinkArgs {
    target: String,
}

#[derive(Deserialize)]
struct FillArgs {
    path: String,
    mb: u64,
}

/// Every tool declares side effects: the plugin holds a read-write grant, so
/// the host refuses a claim of none unless the operator pins it.
fn misbehaviour(name: &str, description: &str) -> ToolDescriptor {
    descriptor(
        name,
        description,
        json!({"type": "object"}),
        json!({"type": "object"}),
        true,
    )
}

/// Uses the wasm call stack (not the shadow stack in linear memory) until the
/// engine's stack limit stops it.
#[inline(never)]
#[expect(unconditional_recursion, reason = "the stack overflow is the point")]
fn recurse(depth: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) + 1
}

/// Puts 512-byte frames on the shadow stack until it runs off the bottom of
/// linear memory.
#[inline(never)]
#[expect(unconditional_recursion, reason = "the stack overflow is the point")]
fn smash_stack(depth: u64) -> u64 {
    let frame = [depth; 64];
    std::hint::black_box(&frame);
    smash_stack(depth + 1) + frame[0]
}

impl Guest for Hostile {
    fn describe() -> Vec<ToolDescriptor> {
        vec![
            misbehaviour("panic", "Panics, which traps the instance."),
            misbehaviour("spin", "Loops forever without yielding."),
            misbehaviour("grow", "Allocates memory without bound."),
            misbehaviour(
                "recurse",
                "Recurses without bound until the stack overflows.",
            ),
            misbehaviour(
                "smash_stack",
                "Overflows the shadow stack in linear memory.",
            ),
            misbehaviour("bad_json", "Returns text that is not JSON."),
            misbehaviour(
                "wrong_shape",
                "Returns JSON that violates its output schema.",
            ),
            misbehaviour(
                "huge_output",
                "Returns a 4 MiB string, over the host's output limit.",
            ),
            misbehaviour(
                "invalid_utf8",
                "Returns bytes that are not UTF-8 as a string.",
            ),
            misbehaviour("read_file", "Reads any path it is given: {path}."),
            ToolDescriptor {
                side_effects: true,
                ..misbehaviour(
                    "write_file",
                    "Writes any path it is given: {path, content}.",
                )
            },
            ToolDescriptor {
                side_effects: true,
                ..misbehaviour(
                    "write_slowly",
                    "Waits {seconds}, then writes {path}: a side effect a crash can interrupt.",
                )
            },
            misbehaviour(
                "symlink_escape",
                "Plants a symlink to {target} in /data/rw and reads through it.",
            ),
            misbehaviour("fill_disk", "Writes {mb} MiB into {path}."),
            misbehaviour(
                "grow_file",
                "Extends {path} to {mb} MiB with set-size, writing nothing.",
            ),
            misbehaviour("read_env", "Returns every environment variable it can see."),
            misbehaviour("exit", "Calls exit(3) in the middle of a call."),
            misbehaviour("sleep", "Sleeps for a minute inside a host call."),
            misbehaviour(
                "stdout_flood",
                "Writes 4 MiB to stdout and 4 MiB to stderr.",
            ),
            misbehaviour("log_flood", "Sends 10,000 log messages."),
        ]
    }

    fn invoke(name: String, args: String) -> Result<String, ToolError> {
        match name.as_str() {
            "panic" => panic!("hostile plugin panicked on purpose"),
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => Ok(recurse(0).to_string()),
            "smash_stack" => Ok(smash_stack(0).to_string()),
            "bad_json" => Ok("this is { not json".to_string()),
            "wrong_shape" => Ok(r#"["an", "array"]"#.to_string()),
            "huge_output" => Ok(format!("\"{}\"", "x".repeat(4 << 20))),
            "invalid_utf8" => {
                // SAFETY: deliberately not UTF-8; the host must refuse to lift it.
                #[expect(unsafe_code, reason = "the invalid string is the point")]
                let text = unsafe { String::from_utf8_unchecked(vec![b'"', 0xff, 0xfe, b'"']) };
                Ok(text)
            }
            "read_file" => {
                let a: PathArgs = parse_args(&args)?;
                let content = std::fs::read_to_string(&a.path)
                    .map_err(|e| ToolError::Failed(format!("{}: {e}", a.path)))?;
                output(&json!({ "content": content }))
            }
            "write_file" => {
                let a: WriteArgs = parse_args(&args)?;
                std::fs::write(&a.path, a.content.as_bytes())
                    .map_err(|e| ToolError::Failed(format!("{}: {e}", a.path)))?;
                output(&json!({ "written": a.content.len() }))
            }
            "write_slowly" => {
                let a: SlowWriteArgs = parse_args(&args)?;
                std::thread::sleep(std::time::Duration::from_secs(a.seconds));
                std::fs::write(&a.path, b"written")
                    .map_err(|e| ToolError::Failed(format!("{}: {e}", a.path)))?;
                output(&json!({ "written": true }))
            }
            "symlink_escape" => {
                let a: SymlinkArgs = parse_args(&args)?;
                let preopens = wasip2::filesystem::preopens::get_directories();
                let (dir, _) = preopens
                    .iter()
                    .find(|(_, path)| path == "/data/rw")
                    .ok_or_else(|| ToolError::Failed("/data/rw is not preopened".into()))?;
                let _ = dir.unlink_file_at("escape-link");
                dir.symlink_at(&a.target, "escape-link")
                    .map_err(|e| ToolError::Failed(format!("symlink: {e:?}")))?;
                let content = std::fs::read_to_string("/data/rw/escape-link")
                    .map_err(|e| ToolError::Failed(format!("read through symlink: {e}")))?;
                output(&json!({ "content": content }))
            }
            "fill_disk" => {
                let a: FillArgs = parse_args(&args)?;
                let chunk = vec![0u8; 1 << 20];
                let mut file = std::fs::File::create(&a.path)
                    .map_err(|e| ToolError::Failed(format!("{}: {e}", a.path)))?;
                let mut written = 0u64;
                for _ in 0..a.mb {
                    use std::io::Write;
                    if let Err(e) = file.write_all(&chunk) {
                        return Err(ToolError::Failed(format!("after {written} MiB: {e}")));
                    }
                    written += 1;
                }
                output(&json!({ "written_mb": written }))
            }
            "grow_file" => {
                let a: FillArgs = parse_args(&args)?;
                let file = std::fs::File::create(&a.path)
                    .map_err(|e| ToolError::Failed(format!("{}: {e}", a.path)))?;
                file.set_len(a.mb << 20)
                    .map_err(|e| ToolError::Failed(format!("set_len: {e}")))?;
                output(&json!({ "written_mb": a.mb }))
            }
            "read_env" => {
                let vars: std::collections::BTreeMap<String, String> = std::env::vars().collect();
                output(&json!({ "env": vars }))
            }
            "exit" => std::process::exit(3),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(60));
                output(&json!({}))
            }
            "stdout_flood" => {
                use std::io::Write;
                let line = [b'x'; 1024];
                for _ in 0..(4 * 1024) {
                    let _ = std::io::stdout().write_all(&line);
                    let _ = std::io::stderr().write_all(&line);
                }
                output(&json!({ "flooded": true }))
            }
            "log_flood" => {
                for i in 0..10_000 {
                    log(Level::Info, &format!("flood {i}"));
                }
                output(&json!({ "flooded": true }))
            }
            other => Err(warden_plugin_sdk::unknown_tool(other)),
        }
    }
}

warden_plugin_sdk::export!(Hostile);
