//! `warden call`: one call as a configured principal.

use std::process::ExitCode;

use anyhow::Context;
use warden::config::Config;
use warden::{CallRequest, Kernel};

/// Calls `tool` with `args` (JSON) as `principal`, with the output
/// contract in the file `contract` if given, prints its output, and exits with the error code's exit code when it fails.
pub(crate) async fn run(
    config: &Config,
    tool: String,
    args: String,
    principal: String,
    contract: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let args: serde_json::Value = serde_json::from_str(&args).context("ARGS is not valid JSON")?;
    let contract = contract
        .map(warden::contract::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--contract: {e}"))?;
    let kernel = Kernel::start(config).await?;
    let principal = kernel
        .principals()
        .by_id(&principal)
        .with_context(|| format!("no principal `{principal}` in {}", config.path.display()))?;
    let response = kernel
        .call(CallRequest {
            principal,
            tool,
            args,
            session: None,
            contract,
            trace: None,
        })
        .await;
    match response.result {
        Ok(output) => {
            println!("{}", serde_json::to_string_pretty(&output)?);
            eprintln!("call {}: ok", response.call_id);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("call {}: {error}", response.call_id);
            Ok(ExitCode::from(error.code.exit_code()))
        }
    }
}
