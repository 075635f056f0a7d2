//! `warden migrate`: apply audit store migrations.

use std::process::ExitCode;

use warden::config::Config;

/// Applies the audit store's migrations.
pub(crate) async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let store = warden::audit::AuditStore::connect(
        &config.audit_url,
        config
            .audit
            .commit_timeout
            .max(std::time::Duration::from_secs(5)),
    )
    .await?;
    store.migrate().await?;
    println!("audit store is up to date");
    Ok(ExitCode::SUCCESS)
}
