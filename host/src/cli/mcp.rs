//! `warden mcp`: MCP over stdio as one principal.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use warden::Kernel;
use warden::config::Config;

/// Serves MCP over stdio as `principal` until the client hangs up.
pub(crate) async fn run(config: &Config, principal: String) -> anyhow::Result<ExitCode> {
    let kernel = Arc::new(Kernel::start(config).await?);
    // A stdio session lasts as long as its client: policy reloads apply to it.
    kernel.watch_policy();
    let principal = kernel
        .principals()
        .by_id(&principal)
        .with_context(|| format!("no principal `{principal}` in {}", config.path.display()))?;
    warden::mcp::serve_stdio(warden::mcp::McpServer::new(kernel, Some(principal)))
        .await
        .context("serving MCP over stdio")?;
    Ok(ExitCode::SUCCESS)
}
