//! `warden tools`: the tools a principal may see, or every configured tool.

use std::process::ExitCode;

use anyhow::Context;
use warden::Kernel;
use warden::config::Config;

/// Prints each tool's name, side effects and description: with a principal,
/// the tools it may see ([`Kernel::visible_tools`], as MCP `tools/list` and
/// `GET /v1/tools`); without, every configured tool (the operator's view).
pub(crate) async fn run(config: &Config, principal: Option<&str>) -> anyhow::Result<ExitCode> {
    let kernel = Kernel::start(config).await?;
    let principal = principal
        .map(|id| {
            kernel
                .principals()
                .by_id(id)
                .with_context(|| format!("no principal `{id}` in {}", config.path.display()))
        })
        .transpose()?;
    let tools: Vec<_> = match &principal {
        Some(principal) => kernel.visible_tools(principal).collect(),
        None => kernel.registry().tools().collect(),
    };
    for tool in tools {
        let effects = if tool.side_effects {
            " [side effects]"
        } else {
            ""
        };
        println!("{}{effects}\n    {}", tool.name, tool.description);
    }
    Ok(ExitCode::SUCCESS)
}
