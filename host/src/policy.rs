//! Policy: a Rego bundle compiled once with regorus and evaluated on every call.
//!
//! A bundle is a directory of `*.rego` files (tests, `*_test.rego`, are not
//! loaded) plus an optional `data.json`. It must define
//! `data.warden.authz.decision`, an object `{"allow": bool, "reasons": [string]}`;
//! see `docs/policy.md` for the input document. The bundle is identified by
//! the SHA-256 of its files, which is recorded with every call.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The rule every bundle must define.
pub const ENTRYPOINT: &str = "data.warden.authz.decision";

/// A loaded, compiled policy bundle.
pub struct PolicyBundle {
    compiled: regorus::CompiledPolicy,
    hash: String,
    dir: PathBuf,
}

impl std::fmt::Debug for PolicyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyBundle")
            .field("dir", &self.dir)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// The outcome of a policy decision.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Whether the call may proceed.
    pub allow: bool,
    /// Why, for denials (and optionally for allows).
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl PolicyBundle {
    /// Loads every `*.rego` (except `*_test.rego`) and `data.json` under `dir`,
    /// compiles the bundle for [`ENTRYPOINT`], and hashes its contents.
    pub fn load(dir: &Path) -> Result<PolicyBundle> {
        let fail = |message: String| Error::Policy {
            dir: dir.to_path_buf(),
            message,
        };
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files).map_err(|e| fail(e.to_string()))?;
        files.sort();
        let mut hasher = Sha256::new();
        let mut engine = regorus::Engine::new();
        let mut policies = 0;
        for relative in &files {
            let path = dir.join(relative);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            let name = relative.to_string_lossy().replace('\\', "/");
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
            if name.ends_with(".rego") {
                engine
                    .add_policy(name.clone(), text)
                    .map_err(|e| fail(format!("{e}")))?;
                policies += 1;
            } else {
                let data = regorus::Value::from_json_str(&text)
                    .map_err(|e| fail(format!("{name}: invalid JSON: {e}")))?;
                engine
                    .add_data(data)
                    .map_err(|e| fail(format!("{name}: {e}")))?;
            }
        }
        if policies == 0 {
            return Err(fail("contains no .rego files".into()));
        }
        let entrypoint: regorus::Rc<str> = regorus::Rc::from(ENTRYPOINT);
        let compiled = engine
            .compile_with_entrypoint(&entrypoint)
            .map_err(|e| fail(format!("cannot compile `{ENTRYPOINT}`: {e}")))?;
        Ok(PolicyBundle {
            compiled,
            hash: hex::encode(hasher.finalize()),
            dir: dir.to_path_buf(),
        })
    }

    /// The bundle's content hash (hex SHA-256).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Evaluates the decision for `input`. Any failure (evaluation error,
    /// undefined or malformed decision) is an `Err`, which callers treat as deny.
    pub fn decide(&self, input: &serde_json::Value) -> std::result::Result<Decision, String> {
        let value = self
            .compiled
            .eval_with_input(regorus::Value::from(input.clone()))
            .map_err(|e| format!("evaluating `{ENTRYPOINT}`: {e}"))?;
        if value == regorus::Value::Undefined {
            return Err(format!("`{ENTRYPOINT}` is undefined for this input"));
        }
        let json = serde_json::to_value(&value).map_err(|e| e.to_string())?;
        serde_json::from_value(json).map_err(|e| {
            format!("`{ENTRYPOINT}` must be {{\"allow\": bool, \"reasons\": [string]}}: {e}")
        })
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let wanted =
            (name.ends_with(".rego") && !name.ends_with("_test.rego")) || name == "data.json";
        if wanted && let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_path_buf());
        }
    }
    Ok(())
}
