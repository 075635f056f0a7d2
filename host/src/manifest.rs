//! Plugin manifests: the small TOML file shipped beside a `.wasm` component.
//!
//! ```toml
//! name = "files"
//! version = "0.1.0"
//! kind = "tool"
//! component = "files.wasm"          # relative to this file
//! [capabilities]
//! directories = [{ guest = "/data", access = "ro" }]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::capabilities::Requested;
use crate::error::{Error, Result};

/// The kind of plugin, which selects the WIT world it must implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Offers tools (`warden:plugin/tool`).
    Tool,
    /// Examines call inputs and outputs (`warden:plugin/verifier`).
    Verifier,
    /// Adapts an LLM API (`warden:plugin/provider`); not yet supported.
    Provider,
}

impl PluginKind {
    /// How manifests spell it.
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Tool => "tool",
            PluginKind::Verifier => "verifier",
            PluginKind::Provider => "provider",
        }
    }
}

/// A parsed and validated plugin manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's own name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// Which world the component implements.
    pub kind: PluginKind,
    /// What the plugin is for.
    #[serde(default)]
    pub description: String,
    /// The component file, relative to the manifest.
    pub component: PathBuf,
    /// Names of the tools the component describes. When given, the host
    /// refuses a component that describes any other set: what an operator
    /// reviewed is what runs.
    pub tools: Option<Vec<String>>,
    /// Capabilities the plugin asks for.
    #[serde(default)]
    pub capabilities: Requested,
}

impl Manifest {
    /// Reads and validates a manifest; the component path is resolved against
    /// the manifest's directory.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut manifest: Manifest = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        if manifest.kind != PluginKind::Tool && manifest.tools.is_some() {
            return Err(invalid(format!(
                "field `tools`: a {} offers no tools",
                manifest.kind.name()
            )));
        }
        validate_name(&manifest.name).map_err(|m| invalid(format!("field `name`: {m}")))?;
        manifest
            .capabilities
            .validate()
            .map_err(|(field, m)| invalid(format!("field `capabilities.{field}`: {m}")))?;
        if let Some(dir) = path.parent() {
            manifest.component = dir.join(&manifest.component);
        }
        Ok(manifest)
    }
}

/// Plugin and tool names: 1 to 64 characters of `[a-z0-9_-]`.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be 1 to 64 characters of lowercase letters, digits, `_` or `-`"
        ))
    }
}
