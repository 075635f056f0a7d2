//! Resolve: the loaded plugins and upstream MCP servers and the tools they
//! offer, by qualified name (`plugin.tool`, `upstream.tool`). Loading a plugin
//! checks its manifest, pin, component and tool descriptors; connecting an
//! upstream checks its tools' names and schemas; any problem refuses the load
//! with a message naming it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::capabilities::Effective;
use crate::config::{Config, PluginConfig};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, validate_name};
use crate::principal::sha256_hex;
use crate::sandbox::{Prepared, Sandbox, ToolDescriptor};
use crate::schema::Schema;
use crate::upstream::{Upstream, UpstreamIdentity, UpstreamTool};

/// A plugin ready to serve calls.
#[derive(Debug)]
pub struct LoadedPlugin {
    /// Name in the host configuration; the prefix of its tools' names.
    pub name: String,
    /// The plugin's manifest.
    pub manifest: Manifest,
    /// SHA-256 of the component: the plugin's identity in the audit trail.
    pub sha256: String,
    /// What the sandbox will hold for it.
    pub capabilities: Effective,
    /// What the operator granted (for inspection).
    pub grants: crate::capabilities::Grants,
    /// One permit per call allowed to run at once.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    /// The component, compiled and pre-linked for fresh instances.
    pub prepared: Prepared,
}

/// A tool as the host knows it.
#[derive(Debug)]
pub struct ToolEntry {
    /// Qualified name, `plugin.tool`.
    pub name: String,
    /// Name inside the plugin.
    pub local_name: String,
    /// Description from the plugin.
    pub description: String,
    /// Whether calls may change anything outside the sandbox.
    pub side_effects: bool,
    /// Labels a call adds to its session.
    pub labels: Vec<String>,
    /// What serves it.
    pub backend: Backend,
    /// Schema the arguments must satisfy.
    pub input: Schema,
    /// Schema a successful output must satisfy.
    pub output: Schema,
    /// The constant parts of its policy input (`target`, `capabilities`),
    /// built at its first call.
    pub(crate) policy_parts: std::sync::OnceLock<[regorus::Value; 2]>,
}

/// What runs a tool's calls.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A WebAssembly plugin, in a fresh sandbox per call.
    Plugin(Arc<LoadedPlugin>),
    /// An upstream MCP server, through the gateway.
    Upstream(Arc<Upstream>),
}

/// What clients see of a tool (`GET /v1/tools`, `warden tools`).
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// Qualified name.
    pub name: String,
    /// Description.
    pub description: String,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// JSON Schema of the output.
    pub output_schema: Value,
    /// Whether calls may have side effects.
    pub side_effects: bool,
    /// Labels a call adds to its session.
    pub labels: Vec<String>,
    /// Serving plugin or upstream.
    pub plugin: String,
    /// SHA-256 of the plugin's component (none for upstream tools).
    pub plugin_sha256: Option<String>,
    /// The upstream MCP server that serves it, if it is not a plugin's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamIdentity>,
}

impl ToolEntry {
    /// The public description of this tool.
    pub fn info(&self) -> ToolInfo {
        ToolInfo {
            name: self.name.clone(),
            description: self.description.clone(),
            input_schema: self.input.document().clone(),
            output_schema: self.output.document().clone(),
            side_effects: self.side_effects,
            labels: self.labels.clone(),
            plugin: self.provider().to_string(),
            plugin_sha256: self.sha256().map(str::to_string),
            upstream: match &self.backend {
                Backend::Plugin(_) => None,
                Backend::Upstream(upstream) => Some(upstream.identity.clone()),
            },
        }
    }

    /// Name of the plugin or upstream that serves it.
    pub fn provider(&self) -> &str {
        match &self.backend {
            Backend::Plugin(plugin) => &plugin.name,
            Backend::Upstream(upstream) => &upstream.name,
        }
    }

    /// SHA-256 of the serving plugin's component; `None` for upstream tools.
    pub fn sha256(&self) -> Option<&str> {
        match &self.backend {
            Backend::Plugin(plugin) => Some(&plugin.sha256),
            Backend::Upstream(_) => None,
        }
    }

    /// The limits and capabilities its calls run with.
    pub fn capabilities(&self) -> &Effective {
        match &self.backend {
            Backend::Plugin(plugin) => &plugin.capabilities,
            Backend::Upstream(upstream) => &upstream.capabilities,
        }
    }

    /// One permit per call of its provider allowed to run at once.
    pub(crate) fn slots(&self) -> &tokio::sync::Semaphore {
        match &self.backend {
            Backend::Plugin(plugin) => &plugin.slots,
            Backend::Upstream(upstream) => &upstream.slots,
        }
    }
}

/// All loaded tools, by qualified name.
#[derive(Debug, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<ToolEntry>>,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    upstreams: BTreeMap<String, Arc<Upstream>>,
}

impl Registry {
    /// Loads every plugin in the config. The first plugin that fails stops the
    /// load: a host never starts with part of its configured tools silently missing.
    pub async fn load(config: &Config, sandbox: &Sandbox) -> Result<Registry> {
        let mut registry = Registry::default();
        for (name, plugin_config) in &config.plugins {
            let (plugin, descriptors) = load_plugin(name, plugin_config, config, sandbox).await?;
            let plugin = Arc::new(plugin);
            for descriptor in descriptors {
                let entry = tool_entry(&plugin, descriptor)?;
                if registry.tools.contains_key(&entry.name) {
                    return Err(Error::Plugin {
                        plugin: name.clone(),
                        message: format!("describes tool `{}` twice", entry.local_name),
                    });
                }
                registry.tools.insert(entry.name.clone(), Arc::new(entry));
            }
            registry.plugins.insert(name.clone(), plugin);
        }
        for (name, upstream_config) in &config.upstreams {
            let (upstream, tools) = Upstream::connect(name, upstream_config, config).await?;
            let upstream = Arc::new(upstream);
            for tool in tools {
                let entry = upstream_tool_entry(&upstream, &upstream_config.labels, tool)?;
                if registry.tools.contains_key(&entry.name) {
                    return Err(Error::Upstream {
                        upstream: name.clone(),
                        message: format!("lists tool `{}` twice", entry.local_name),
                    });
                }
                registry.tools.insert(entry.name.clone(), Arc::new(entry));
            }
            registry.upstreams.insert(name.clone(), upstream);
        }
        Ok(registry)
    }

    /// The tool with this qualified name.
    pub fn tool(&self, name: &str) -> Option<&Arc<ToolEntry>> {
        self.tools.get(name)
    }

    /// All tools in name order.
    pub fn tools(&self) -> impl Iterator<Item = &Arc<ToolEntry>> {
        self.tools.values()
    }

    /// All plugins in name order.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    /// All upstream MCP servers in name order.
    pub fn upstreams(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.upstreams.values()
    }
}

async fn load_plugin(
    name: &str,
    plugin_config: &PluginConfig,
    config: &Config,
    sandbox: &Sandbox,
) -> Result<(LoadedPlugin, Vec<ToolDescriptor>)> {
    let fail = |message: String| Error::Plugin {
        plugin: name.to_string(),
        message,
    };
    // Named once, as this plugin's problem (an I/O error's source would repeat the message).
    let manifest =
        Manifest::load(&plugin_config.manifest).map_err(|e| fail(format!("manifest {e}")))?;
    let component_path = plugin_config
        .component
        .clone()
        .unwrap_or_else(|| manifest.component.clone());
    let bytes = std::fs::read(&component_path).map_err(|e| {
        fail(format!(
            "cannot read component {}: {e}",
            component_path.display()
        ))
    })?;
    let sha256 = sha256_hex(&bytes);
    if let Some(pin) = &plugin_config.sha256
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        return Err(fail(format!(
            "component {} has sha256 {sha256}, but the config pins {pin}",
            component_path.display()
        )));
    }
    let missing = Effective::missing(&manifest.capabilities, &plugin_config.grants);
    if !missing.is_empty() && !plugin_config.allow_reduced {
        return Err(fail(format!(
            "requests capabilities that are not granted (grant them, or set \
             `allow_reduced = true` to load it without them):\n  - {}",
            missing.join("\n  - ")
        )));
    }
    let capabilities = Effective::intersect(
        &manifest.capabilities,
        &plugin_config.grants,
        &config.limits,
        &config.secrets,
    )
    .map_err(|m| fail(format!("grants: {m}")))?;
    let prepared = sandbox.load(name, &bytes, &sha256, config.cache_dir.as_deref())?;
    let descriptors = sandbox
        .describe(name, &prepared, &capabilities)
        .await
        .map_err(|e| fail(format!("describe failed: {e}")))?;
    if let Some(declared) = &manifest.tools {
        let mut declared = declared.clone();
        let mut described: Vec<String> = descriptors.iter().map(|d| d.name.clone()).collect();
        declared.sort();
        described.sort();
        if declared != described {
            return Err(fail(format!(
                "the manifest declares tools [{}] but the component describes [{}]",
                declared.join(", "),
                described.join(", ")
            )));
        }
    }
    let plugin = LoadedPlugin {
        name: name.to_string(),
        manifest,
        sha256,
        slots: Arc::new(tokio::sync::Semaphore::new(
            capabilities.max_concurrent as usize,
        )),
        capabilities,
        grants: plugin_config.grants.clone(),
        prepared,
    };
    Ok((plugin, descriptors))
}

/// Most labels one tool may declare, and their longest spelling: they are
/// copied into every session the tool runs in.
const LABELS_MAX: usize = 16;
const LABEL_MAX: usize = 64;
/// Longest tool description kept (it is shown to every MCP client).
const DESCRIPTION_MAX: usize = 4096;

/// A tool's labels: at most [`LABELS_MAX`], each 1 to [`LABEL_MAX`] bytes of
/// ASCII letters, digits, `-`, `_`, `.` or `:`.
fn validate_labels(labels: &[String]) -> std::result::Result<(), String> {
    if labels.len() > LABELS_MAX {
        return Err(format!(
            "declares {} labels; at most {LABELS_MAX} are allowed",
            labels.len()
        ));
    }
    for label in labels {
        let valid = !label.is_empty()
            && label.len() <= LABEL_MAX
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !valid {
            return Err(format!(
                "label {:?} must be 1 to {LABEL_MAX} ASCII letters, digits, `-`, `_`, `.` or `:`",
                crate::bounds::bounded(label, LABEL_MAX)
            ));
        }
    }
    Ok(())
}

/// Checks one descriptor: a valid name, bounded labels and two schemas that compile.
fn tool_entry(plugin: &Arc<LoadedPlugin>, descriptor: ToolDescriptor) -> Result<ToolEntry> {
    let fail = |message: String| Error::Plugin {
        plugin: plugin.name.clone(),
        message: format!("tool `{}`: {message}", descriptor.name),
    };
    validate_name(&descriptor.name).map_err(|m| fail(format!("invalid name: {m}")))?;
    validate_labels(&descriptor.labels).map_err(fail)?;
    let input = Schema::parse(&descriptor.input_schema)
        .map_err(|m| fail(format!("invalid input schema: {m}")))?;
    let output = Schema::parse(&descriptor.output_schema)
        .map_err(|m| fail(format!("invalid output schema: {m}")))?;
    Ok(ToolEntry {
        name: format!("{}.{}", plugin.name, descriptor.name),
        local_name: descriptor.name,
        description: crate::bounds::bounded(&descriptor.description, DESCRIPTION_MAX).into_owned(),
        side_effects: descriptor.side_effects,
        labels: descriptor.labels,
        backend: Backend::Plugin(plugin.clone()),
        input,
        output,
        policy_parts: std::sync::OnceLock::new(),
    })
}

/// Checks one upstream tool: a name MCP allows and an input schema that
/// compiles. Its output is the MCP result itself, `{"content": [...]}` plus
/// `structuredContent` valid against the tool's output schema when it has one.
fn upstream_tool_entry(
    upstream: &Arc<Upstream>,
    labels: &[String],
    tool: UpstreamTool,
) -> Result<ToolEntry> {
    let fail = |message: String| Error::Upstream {
        upstream: upstream.name.clone(),
        message: format!("tool `{}`: {message}", tool.name),
    };
    let valid_name = !tool.name.is_empty()
        && tool.name.len() <= 128
        && tool
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid_name {
        return Err(fail(
            "invalid name: MCP tool names are 1 to 128 characters of letters, digits, \
             `_`, `-` or `.` (leave it out with `tools = [...]`)"
                .into(),
        ));
    }
    let input = Schema::from_value(tool.input_schema)
        .map_err(|m| fail(format!("invalid input schema: {m}")))?;
    let mut output_schema = serde_json::json!({
        "type": "object",
        "required": ["content"],
        "properties": {"content": {"type": "array"}},
    });
    if let Some(structured) = tool.output_schema {
        output_schema["required"] = serde_json::json!(["content", "structuredContent"]);
        output_schema["properties"]["structuredContent"] = structured;
    }
    let output = Schema::from_value(output_schema)
        .map_err(|m| fail(format!("invalid output schema: {m}")))?;
    Ok(ToolEntry {
        name: format!("{}.{}", upstream.name, tool.name),
        local_name: tool.name,
        description: crate::bounds::bounded(&tool.description, DESCRIPTION_MAX).into_owned(),
        side_effects: tool.side_effects,
        labels: labels.to_vec(),
        backend: Backend::Upstream(upstream.clone()),
        input,
        output,
        policy_parts: std::sync::OnceLock::new(),
    })
}
