//! `warden verify`: one verifier on one document, from the shell.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use warden::config::{Config, VerifierStage};

/// Runs verifier `name` on the document in `file` (JSON, or any other text,
/// which is checked as one JSON string) and prints its verdict as JSON; with
/// `redact`, prints the document with every finding replaced instead. Exits
/// 0 when the verdict is clean, 1 with findings, 3 when the verifier failed.
pub(crate) async fn run(
    config: &Config,
    name: &str,
    file: &Path,
    stage: VerifierStage,
    target: &str,
    redact: bool,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let content = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    let (verdict, redacted) =
        warden::verify::verify_document(config, name, stage, target, "default", &content).await?;
    let shown = if redact {
        redacted
    } else {
        serde_json::to_value(&verdict.record)?
    };
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(match verdict.record.verdict.as_str() {
        "clean" => ExitCode::SUCCESS,
        "findings" => ExitCode::from(1),
        _ => ExitCode::from(3),
    })
}
