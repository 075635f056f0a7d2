//! Resolve: the loaded plugins and upstream MCP servers and the tools they
//! offer, by qualified name (`plugin.tool`, `upstream.tool`). Loading a plugin
//! checks its manifest, pin, component and tool descriptors; connecting an
//! upstream checks its tools' names and schemas; any problem refuses the load
//! with a message naming it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::backend::UpstreamIdentity;
use crate::backend::{Backend, BoxFuture, Invocation, OutputForm, Provider, Ran};
use crate::capabilities::{CallScope, Effective};
use crate::config::{ComponentSource, Config, PluginConfig, ToolPin, UpstreamConfig};
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, PluginKind, validate_name};
use crate::sandbox::{Prepared, Sandbox, ToolDescriptor};
use crate::schema::Schema;
use crate::upstream::{Upstream, UpstreamTool};

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
    /// Its identity for policy input and audit records.
    provider: Provider,
    /// The engine its calls run in.
    sandbox: Sandbox,
}

impl Backend for LoadedPlugin {
    fn provider(&self) -> &Provider {
        &self.provider
    }

    fn capabilities(&self) -> &Effective {
        &self.capabilities
    }

    fn slots(&self) -> &tokio::sync::Semaphore {
        &self.slots
    }

    fn output_form(&self) -> OutputForm {
        OutputForm::Document
    }

    fn invoke<'a>(&'a self, call: Invocation<'a>) -> BoxFuture<'a, Ran> {
        Box::pin(async move {
            let args = call.args.to_string();
            let invocation = self
                .sandbox
                .invocation(
                    CallScope {
                        plugin: &self.name,
                        tenant: Some(&call.principal.tenant),
                        store: Some(call.store),
                    },
                    &self.prepared,
                    call.capabilities,
                    call.tool,
                    &args,
                )
                .await;
            Ran {
                output: invocation.output,
                refusals: invocation.refusals,
            }
        })
    }
}

/// What kind of target a call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A plugin's or an upstream MCP server's tool.
    Tool,
    /// A model served through a provider adapter (the gateway).
    Model,
}

impl TargetKind {
    /// `tool` or `model`, as policy input (`input.target.kind`) and errors name it.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Tool => "tool",
            TargetKind::Model => "model",
        }
    }
}

/// A target as the host knows it: a tool, or a model of the gateway.
#[derive(Debug)]
pub struct ToolEntry {
    /// Whether it is a tool or a model.
    pub kind: TargetKind,
    /// Qualified name, `plugin.tool`; a model's configured name.
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
    pub backend: Arc<dyn Backend>,
    /// A model's configuration (none for a tool).
    pub(crate) model: Option<Arc<crate::config::ModelConfig>>,
    /// Schema the arguments must satisfy.
    pub input: Schema,
    /// Schema a successful output must satisfy.
    pub output: Schema,
    /// The constant parts of its policy input (`target`, `capabilities`),
    /// built at its first call.
    pub(crate) policy_parts: std::sync::OnceLock<[regorus::Value; 2]>,
    /// This tool's capabilities when they are narrower than its plugin's: a
    /// tool that claims no side effects sends only safe HTTP methods.
    narrowed: Option<Effective>,
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
    /// The target of the model `name`: its calls are chat requests,
    /// checked against `request`, and its outputs completions, against `response`.
    pub(crate) fn model(
        name: &str,
        model: Arc<crate::config::ModelConfig>,
        backend: Arc<dyn Backend>,
        request: Schema,
        response: Schema,
    ) -> ToolEntry {
        ToolEntry {
            kind: TargetKind::Model,
            name: name.to_string(),
            local_name: model.upstream_model.clone(),
            description: model.description.clone(),
            side_effects: false,
            labels: model.labels.clone(),
            model: Some(model),
            backend,
            input: request,
            output: response,
            policy_parts: std::sync::OnceLock::new(),
            narrowed: None,
        }
    }

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
            upstream: self.backend.provider().upstream.clone(),
        }
    }

    /// Name of the plugin or upstream that serves it.
    pub fn provider(&self) -> &str {
        &self.backend.provider().name
    }

    /// SHA-256 of the serving plugin's component; `None` for upstream tools.
    pub fn sha256(&self) -> Option<&str> {
        self.backend.provider().sha256.as_deref()
    }

    /// The limits and capabilities its calls run with.
    pub fn capabilities(&self) -> &Effective {
        self.narrowed
            .as_ref()
            .unwrap_or_else(|| self.backend.capabilities())
    }

    /// One permit per call of its provider allowed to run at once.
    pub(crate) fn slots(&self) -> &tokio::sync::Semaphore {
        self.backend.slots()
    }
}

/// All loaded tools, by qualified name.
#[derive(Debug, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<ToolEntry>>,
    models: BTreeMap<String, Arc<ToolEntry>>,
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
            check_pins(
                name,
                &plugin_config.tools,
                descriptors.iter().map(|d| d.name.as_str()),
            )
            .map_err(|message| Error::Plugin {
                plugin: name.clone(),
                message,
            })?;
            for descriptor in descriptors {
                let pin = plugin_config.tools.get(&descriptor.name);
                let entry = tool_entry(&plugin, descriptor, pin)?;
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
            check_pins(
                name,
                &upstream_config.pins,
                tools.iter().map(|t| t.name.as_str()),
            )
            .map_err(|message| Error::Upstream {
                upstream: name.clone(),
                message,
            })?;
            for tool in tools {
                let entry = upstream_tool_entry(&upstream, upstream_config, tool)?;
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

    /// Adds the gateway's models (`gateway::load`), by name.
    pub(crate) fn add_models(&mut self, models: impl IntoIterator<Item = Arc<ToolEntry>>) {
        self.models
            .extend(models.into_iter().map(|m| (m.name.clone(), m)));
    }

    /// The model with this name.
    pub fn model(&self, name: &str) -> Option<&Arc<ToolEntry>> {
        self.models.get(name)
    }

    /// All models in name order.
    pub fn models(&self) -> impl Iterator<Item = &Arc<ToolEntry>> {
        self.models.values()
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

/// A component checked and compiled: its manifest, identity, effective
/// capabilities and pre-linked form.
pub(crate) struct LoadedComponent {
    pub(crate) manifest: Manifest,
    pub(crate) sha256: String,
    pub(crate) capabilities: Effective,
    pub(crate) prepared: Prepared,
}

/// Loads the component named `name` of `kind`: its manifest (of that kind),
/// the bytes (against the pin), its capabilities (requested ∩ granted) and
/// its compiled form, pre-initialized for a verifier (its `prepare` run at
/// each load, the instance snapshotted; the snapshot compiled once and cached
/// by its digest). `Err` says
/// what is wrong, for the caller to attribute.
pub(crate) async fn load_component(
    name: &str,
    kind: PluginKind,
    source: &ComponentSource<'_>,
    config: &Config,
    sandbox: &Sandbox,
) -> std::result::Result<LoadedComponent, String> {
    // Named once, as this component's problem (an I/O error's source would repeat the message).
    let manifest = Manifest::load(source.manifest).map_err(|e| format!("manifest {e}"))?;
    if manifest.kind != kind {
        return Err(format!(
            "manifest {}: `kind` is \"{}\", but it is configured as a {}",
            source.manifest.display(),
            manifest.kind.name(),
            kind.name()
        ));
    }
    let component_path = source
        .component
        .map_or_else(|| manifest.component.clone(), Path::to_path_buf);
    let bytes = std::fs::read(&component_path)
        .map_err(|e| format!("cannot read component {}: {e}", component_path.display()))?;
    let sha256 = sha256_hex(&bytes);
    if let Some(pin) = source.sha256
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        return Err(format!(
            "component {} has sha256 {sha256}, but the config pins {pin}",
            component_path.display()
        ));
    }
    let missing = Effective::missing(&manifest.capabilities, source.grants);
    if !missing.is_empty() && !source.allow_reduced {
        return Err(format!(
            "requests capabilities that are not granted (grant them, or set \
             `allow_reduced = true` to load it without them):\n  - {}",
            missing.join("\n  - ")
        ));
    }
    let capabilities = Effective::intersect(
        &manifest.capabilities,
        source.grants,
        &config.limits,
        &config.secrets,
    )
    .map_err(|m| format!("grants: {m}"))?;
    let cache = config.cache_dir.as_deref();
    let only_message = |e: Error| match e {
        Error::Plugin { message, .. } => message,
        other => other.to_string(),
    };
    let prepared = if kind == PluginKind::Verifier {
        let snapshot = sandbox
            .preinitialize(name, &bytes, &capabilities, cache)
            .await
            .map_err(|m| format!("pre-initialization failed: {m}"))?;
        sandbox
            .load(name, kind, &snapshot, &sha256_hex(&snapshot), cache)
            .map_err(only_message)?
    } else {
        sandbox
            .load(name, kind, &bytes, &sha256, cache)
            .map_err(only_message)?
    };
    Ok(LoadedComponent {
        manifest,
        sha256,
        capabilities,
        prepared,
    })
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
    let source = plugin_config.source();
    let LoadedComponent {
        manifest,
        sha256,
        capabilities,
        prepared,
    } = load_component(name, PluginKind::Tool, &source, config, sandbox)
        .await
        .map_err(fail)?;
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
    let provider = Provider {
        name: name.to_string(),
        version: manifest.version.clone(),
        sha256: Some(sha256.clone()),
        upstream: None,
        upstream_json: None,
    };
    let plugin = LoadedPlugin {
        name: name.to_string(),
        provider,
        sandbox: sandbox.clone(),
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

/// Refuses pins for tools that `owner` does not offer: a misspelt pin would
/// silently pin nothing.
fn check_pins<'a>(
    owner: &str,
    pins: &BTreeMap<String, ToolPin>,
    offered: impl Iterator<Item = &'a str> + Clone,
) -> std::result::Result<(), String> {
    for (tool, pin) in pins {
        if !offered.clone().any(|name| name == tool) {
            return Err(format!(
                "the config pins tool `{tool}`, which `{owner}` does not offer"
            ));
        }
        if pin.labels.len() > PIN_LABELS_MAX
            || pin
                .labels
                .iter()
                .any(|l| l.is_empty() || l.len() > 64 || l.chars().any(char::is_control))
        {
            return Err(format!(
                "tool `{tool}`: pinned labels must be at most {PIN_LABELS_MAX}, each 1 to 64 \
                 characters without control characters"
            ));
        }
    }
    Ok(())
}

/// Most labels an operator may pin on one tool.
const PIN_LABELS_MAX: usize = 32;

/// The labels a tool's calls add: its own plus the operator's, or only the
/// operator's when the pin says `replace_labels`.
fn pinned_labels(own: Vec<String>, pin: Option<&ToolPin>) -> Vec<String> {
    let Some(pin) = pin else {
        return own;
    };
    let mut labels = if pin.replace_labels { Vec::new() } else { own };
    for label in &pin.labels {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    labels
}

/// Checks one descriptor (a valid name, bounded labels, two schemas that compile) and
/// decides the tool's side effects: the operator's pin if there is one, else
/// what the tool claims, refused when its capabilities contradict a claim of
/// none. A tool left claiming none keeps outbound HTTP only for safe methods
/// (GET, HEAD, OPTIONS).
fn tool_entry(
    plugin: &Arc<LoadedPlugin>,
    descriptor: ToolDescriptor,
    pin: Option<&ToolPin>,
) -> Result<ToolEntry> {
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
    let pinned = pin.and_then(|p| p.side_effects);
    let side_effects = pinned.unwrap_or(descriptor.side_effects);
    // A tool left claiming no side effects runs with its capabilities
    // narrowed to what changes nothing (outbound HTTP to safe methods, ...),
    // and is refused when one cannot be narrowed (a read-write directory).
    let narrowed = if pinned.is_none() && !side_effects {
        plugin.capabilities.without_side_effects().map_err(|why| {
            fail(format!(
                "declares no side effects, but {why}; pin `[plugins.{}.tools.{}] side_effects = \
                 false` to accept the claim, or `true`",
                plugin.name, descriptor.name
            ))
        })?
    } else {
        None
    };
    Ok(ToolEntry {
        kind: TargetKind::Tool,
        model: None,
        name: format!("{}.{}", plugin.name, descriptor.name),
        local_name: descriptor.name,
        description: crate::bounds::bounded(&descriptor.description, DESCRIPTION_MAX).into_owned(),
        side_effects,
        labels: pinned_labels(descriptor.labels, pin),
        backend: plugin.clone(),
        input,
        output,
        policy_parts: std::sync::OnceLock::new(),
        narrowed,
    })
}

/// Checks one upstream tool: a name MCP allows and an input schema that
/// compiles. Its output is the MCP result itself, `{"content": [...]}` plus
/// `structuredContent` valid against the tool's output schema when it has one.
///
/// Its side effects are the operator's word alone: an upstream's
/// `readOnlyHint` is a claim nobody checked, so a tool has side effects
/// unless `[upstreams.NAME.pins.TOOL]` says `side_effects = false`.
fn upstream_tool_entry(
    upstream: &Arc<Upstream>,
    config: &UpstreamConfig,
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
    let pin = config.pins.get(&tool.name);
    Ok(ToolEntry {
        kind: TargetKind::Tool,
        model: None,
        name: format!("{}.{}", upstream.name, tool.name),
        side_effects: pin.and_then(|p| p.side_effects).unwrap_or(true),
        labels: pinned_labels(config.labels.clone(), pin),
        local_name: tool.name,
        description: crate::bounds::bounded(&tool.description, DESCRIPTION_MAX).into_owned(),
        backend: upstream.clone(),
        input,
        output,
        policy_parts: std::sync::OnceLock::new(),
        narrowed: None,
    })
}
