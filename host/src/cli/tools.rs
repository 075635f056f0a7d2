//! `warden tools`: the tools the configured plugins offer.

use std::process::ExitCode;

use warden::Kernel;
use warden::config::Config;

/// Prints each tool's name, side effects and description.
pub(crate) async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let kernel = Kernel::start(config).await?;
    for tool in kernel.registry().tools() {
        let effects = if tool.side_effects {
            " [side effects]"
        } else {
            ""
        };
        println!("{}{effects}\n    {}", tool.name, tool.description);
    }
    Ok(ExitCode::SUCCESS)
}
