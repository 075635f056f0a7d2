//! `warden plugins`: inspect loaded plugins.

use std::process::ExitCode;

use anyhow::Context;
use warden::Kernel;
use warden::config::Config;

/// Prints plugin `name`'s identity and its requested, granted and effective
/// capabilities (env grant values hidden).
pub(crate) async fn inspect(config: &Config, name: String) -> anyhow::Result<ExitCode> {
    let kernel = Kernel::start(config).await?;
    let plugin = kernel
        .registry()
        .plugins()
        .find(|p| p.name == name)
        .with_context(|| format!("no plugin `{name}` in {}", config.path.display()))?;
    let tools: Vec<_> = kernel
        .registry()
        .tools()
        .filter(|t| t.provider() == name)
        .map(|t| t.name.clone())
        .collect();
    let mut granted = serde_json::to_value(&plugin.grants)?;
    // Operators may pass credentials through env grants: show names only.
    if let Some(env) = granted.get_mut("env").and_then(|e| e.as_object_mut()) {
        for value in env.values_mut() {
            *value = serde_json::Value::String("(set)".into());
        }
    }
    let report = serde_json::json!({
        "name": plugin.name,
        "version": plugin.manifest.version,
        "component_sha256": plugin.sha256,
        "tools": tools,
        "requested": plugin.manifest.capabilities,
        "granted": granted,
        "effective": plugin.capabilities.summary(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
