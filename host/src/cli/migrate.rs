//! `warden migrate`: apply audit store migrations.

use std::process::ExitCode;

use warden::config::Config;

/// Applies the audit store's migrations.
pub(crate) async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    super::open_store(config).await?;
    println!("audit store is up to date");
    Ok(ExitCode::SUCCESS)
}
