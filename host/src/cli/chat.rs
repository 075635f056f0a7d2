//! `warden chat`: one completion as a configured principal, through the
//! gateway's pipeline, without a server.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use warden::config::Config;
use warden::{CallRequest, Kernel};

/// Asks `model` `prompt` (after `system`, when given) as `principal`,
/// prints the answer's text (and any tool calls), and exits with the error
/// code's exit code when it fails.
pub(crate) async fn run(
    config: &Config,
    model: String,
    prompt: String,
    system: Option<String>,
    principal: String,
) -> anyhow::Result<ExitCode> {
    let kernel = Kernel::start(config).await?;
    let principal = kernel
        .principals()
        .by_id(&principal)
        .with_context(|| format!("no principal `{principal}` in {}", config.path.display()))?;
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": prompt}));
    let response = kernel
        .complete(CallRequest {
            principal,
            tool: model.clone(),
            args: json!({"model": model, "messages": messages}),
            session: None,
            contract: None,
            trace: None,
        })
        .await;
    match response.result {
        Ok(completion) => {
            let message = &completion["choices"][0]["message"];
            if let Some(text) = message["content"].as_str() {
                println!("{text}");
            }
            if let Some(calls) = message.get("tool_calls") {
                println!("{}", serde_json::to_string_pretty(calls)?);
            }
            let usage = &completion["usage"];
            let count = |key: &str| usage[key].as_u64().unwrap_or(0);
            eprintln!(
                "call {}: ok ({} prompt and {} completion tokens, finish reason {})",
                response.call_id,
                count("prompt_tokens"),
                count("completion_tokens"),
                completion["choices"][0]["finish_reason"]
                    .as_str()
                    .unwrap_or("none"),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("call {}: {error}", response.call_id);
            Ok(ExitCode::from(error.code.exit_code()))
        }
    }
}
