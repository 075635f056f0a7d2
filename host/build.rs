//! Generates the end-to-end tests' fixture list (`$OUT_DIR/fixtures.rs`)
//! from `plugins/*/plugin.toml`, so that a test names a plugin by a constant
//! and a misspelt or removed fixture is a compile error, and every tool a
//! hostile fixture declares must have a test case (see
//! `tests/e2e/hostile_cases.rs`). The library itself does not use it.

use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    println!("cargo::rerun-if-changed={}", plugins.display());
    let mut fixtures = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&plugins) {
        for entry in entries.flatten() {
            let manifest = entry.path().join("plugin.toml");
            println!("cargo::rerun-if-changed={}", manifest.display());
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", manifest.display()))?;
            let name = table
                .get("name")
                .and_then(toml::Value::as_str)
                .ok_or_else(|| format!("{}: no plugin name", manifest.display()))?
                .to_string();
            let tools: Vec<String> = table
                .get("tools")
                .and_then(toml::Value::as_array)
                .map(|tools| {
                    tools
                        .iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            fixtures.push((name, manifest, tools));
        }
    }
    fixtures.sort();

    let mut out = String::from(
        "/// A first-party plugin under `plugins/`: its name and its manifest.\n\
         #[derive(Debug, Clone, Copy)]\n\
         pub(crate) struct Fixture {\n    pub(crate) name: &'static str,\n    pub(crate) manifest: &'static str,\n}\n",
    );
    for (name, manifest, _) in &fixtures {
        let manifest = manifest.canonicalize().unwrap_or_else(|_| manifest.clone());
        writeln!(
            out,
            "pub(crate) const {}: Fixture = Fixture {{ name: {name:?}, manifest: {:?} }};",
            constant(name),
            manifest.display().to_string()
        )?;
    }
    out.push_str(
        "/// Calls `$case!(FIXTURE, tool)` for every tool a hostile fixture declares.\n\
         #[allow(unused_macros, reason = \"only the e2e tests check hostile cases\")]\n\
         macro_rules! for_each_hostile_tool {\n    ($case:ident) => {\n",
    );
    for (name, _, tools) in fixtures.iter().filter(|(n, ..)| n.starts_with("hostile")) {
        for tool in tools {
            writeln!(out, "        $case!({}, {tool});", constant(name))?;
        }
    }
    out.push_str("    };\n}\n");
    let path = Path::new(&std::env::var("OUT_DIR")?).join("fixtures.rs");
    std::fs::write(path, out)?;
    Ok(())
}

/// `hostile-fs` → `HOSTILE_FS`.
fn constant(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}
