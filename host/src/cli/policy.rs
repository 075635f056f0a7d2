//! `warden policy`: test, evaluate, sign and make keys for policy bundles.

use std::process::ExitCode;

use anyhow::Context;
use warden::ErrorCode;

use crate::PolicyCommand;

/// Runs one `warden policy` subcommand (needs no host configuration).
pub(crate) fn run(command: &PolicyCommand) -> anyhow::Result<ExitCode> {
    use warden::policy::{BundleFiles, LoadOptions, PolicyBundle, Stage, signature, testing};
    match command {
        PolicyCommand::Test { dir, min_coverage } => {
            let files = BundleFiles::read(dir)?;
            let report =
                testing::run(&files).map_err(|m| anyhow::anyhow!("{}: {m}", dir.display()))?;
            for result in &report.results {
                let status = if result.passed { "PASS" } else { "FAIL" };
                let detail = if result.passed {
                    String::new()
                } else {
                    format!(" ({})", result.outcome)
                };
                println!("{status} {}{detail}", result.name);
            }
            println!("\ncoverage:");
            for file in &report.coverage {
                let lines: Vec<String> = file.not_covered.iter().map(u32::to_string).collect();
                let missed = if lines.is_empty() {
                    String::new()
                } else {
                    format!("  not covered: {}", lines.join(", "))
                };
                println!(
                    "  {}: {}/{} lines{missed}",
                    file.file, file.covered, file.total
                );
            }
            let passed = report.results.iter().filter(|r| r.passed).count();
            let percent = report.coverage_percent();
            println!(
                "\n{passed} passed, {} failed; coverage {percent:.1}%",
                report.results.len() - passed
            );
            if report.results.is_empty() {
                println!("no tests found in {}", dir.display());
                return Ok(ExitCode::from(1));
            }
            if !report.passed() {
                return Ok(ExitCode::from(1));
            }
            if percent < *min_coverage {
                println!("coverage {percent:.1}% is below --min-coverage {min_coverage}%");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Eval { input, policy } => {
            let text = std::fs::read_to_string(input)
                .with_context(|| format!("reading {}", input.display()))?;
            let input: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", input.display()))?;
            let bundle = PolicyBundle::load(policy, &LoadOptions::default())?;
            let stage = if input["stage"] == "output" {
                Stage::Output
            } else {
                Stage::Call
            };
            match bundle.decide(stage, &warden::policy::PolicyInput::from_json(&input)) {
                Ok(decision) => {
                    let report = serde_json::json!({
                        "allow": decision.allow,
                        "reasons": decision.reasons,
                        "policy_hash": bundle.hash(),
                    });
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    Ok(if decision.allow {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(ErrorCode::PolicyDenied.exit_code())
                    })
                }
                Err(message) => {
                    eprintln!("{}: {message}", ErrorCode::PolicyError);
                    Ok(ExitCode::from(ErrorCode::PolicyError.exit_code()))
                }
            }
        }
        PolicyCommand::Sign { dir, key } => {
            let hash = BundleFiles::read(dir)?.hash();
            signature::sign(dir, &hash, key).map_err(|m| anyhow::anyhow!(m))?;
            println!("signed bundle {hash}");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Keygen { out } => {
            let (secret, public) = signature::generate().map_err(|m| anyhow::anyhow!(m))?;
            write_secret(out, &secret)?;
            println!("{public}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes a secret file readable by its owner only.
fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    Ok(())
}
