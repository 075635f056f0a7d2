//! `warden serve`: the HTTP API (and MCP at `/mcp`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use warden::Kernel;
use warden::config::Config;

/// Serves the HTTP API on `listen`, else `server.listen`.
pub(crate) async fn run(config: &Config, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let kernel = Arc::new(Kernel::start(config).await?);
    let listen = listen.unwrap_or_else(|| config.server.listen.clone());
    warden::server::serve(kernel, &config.server, &listen)
        .await
        .with_context(|| format!("serving on {listen}"))?;
    Ok(ExitCode::SUCCESS)
}
