//! `hostile`: a test fixture whose tools misbehave on purpose, so the tests can
//! prove the sandbox contains each failure and the host keeps serving.

use serde_json::json;
use warden_plugin_sdk::{Guest, ToolDescriptor, ToolError, descriptor};

struct Hostile;

fn misbehaviour(name: &str, description: &str) -> ToolDescriptor {
    descriptor(
        name,
        description,
        json!({"type": "object"}),
        json!({"type": "object"}),
        false,
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
        ]
    }

    fn invoke(name: String, _args: String) -> Result<String, ToolError> {
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
            other => Err(warden_plugin_sdk::unknown_tool(other)),
        }
    }
}

warden_plugin_sdk::export!(Hostile);
