//! One module per `warden` command; `main.rs` parses the arguments and
//! dispatches here.

pub(crate) mod audit;
pub(crate) mod budgets;
pub(crate) mod call;
pub(crate) mod chat;
pub(crate) mod mcp;
pub(crate) mod migrate;
pub(crate) mod plugins;
pub(crate) mod policy;
pub(crate) mod serve;
pub(crate) mod tools;
pub(crate) mod verify;

/// The configured audit store, opened and migrated, for the commands that
/// read or prepare it (waiting at least 5 s for a connection).
pub(crate) async fn open_store(
    config: &warden::config::Config,
) -> anyhow::Result<warden::audit::AuditStore> {
    let store = warden::audit::AuditStore::connect(
        &config.audit_url,
        config
            .audit
            .commit_timeout
            .max(std::time::Duration::from_secs(5)),
        config.audit.durability,
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}
