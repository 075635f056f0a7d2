//! The `warden` command line: serve the HTTP API, call a tool, list tools,
//! and read or verify the audit trail.
//!
//! Exit codes: 0 success; 1 audit verification failed; 2 configuration or
//! usage error; a failed call exits with its code's exit code
//! ([`ErrorCode::row`](warden::ErrorCode::row), listed in docs/errors.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use warden::config::Config;
use warden::{CallRequest, Kernel};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Policy-enforcement kernel for LLM tool calls"
)]
struct Cli {
    /// Host configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "WARDEN_CONFIG",
        default_value = "warden.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on (overrides `server.listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Call a tool once, as a configured principal, and print its output.
    Call {
        /// Qualified tool name, e.g. `text.transform`.
        tool: String,
        /// Arguments as JSON.
        args: String,
        /// Principal id to call as. The call has no session: labels it adds
        /// stick to the principal (`[sessions]` in docs/policy.md).
        #[arg(long = "as")]
        principal: String,
    },
    /// Serve MCP over stdio as one principal (for desktop and IDE MCP clients).
    Mcp {
        /// Principal id the client acts as.
        #[arg(long = "as")]
        principal: String,
    },
    /// List the tools the configured plugins offer.
    Tools,
    /// Inspect loaded plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Read and verify the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apply audit store migrations and exit.
    Migrate,
    /// Test and evaluate policy bundles.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run every `test_*` rule of the bundle's `*_test.rego` files, with coverage.
    Test {
        /// Bundle directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// Fail when line coverage of the policy files is below this percentage.
        #[arg(long, default_value_t = 0.0)]
        min_coverage: f64,
    },
    /// Evaluate the decision for one input document and print it.
    Eval {
        /// Input document (JSON), as described in docs/policy.md.
        #[arg(long)]
        input: PathBuf,
        /// Bundle directory.
        #[arg(long, default_value = "policies")]
        policy: PathBuf,
    },
    /// Sign a bundle: writes DIR/bundle.sig over the bundle's hash.
    Sign {
        /// Bundle directory.
        dir: PathBuf,
        /// File holding the hex ed25519 secret key (from `warden policy keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Create a signing key pair: the secret goes to --out, the public key
    /// (for `policy.public_key`) to stdout.
    Keygen {
        /// Where to write the secret key (created with mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Show a plugin's identity and its requested, granted and effective capabilities.
    Inspect {
        /// Plugin name in the host configuration.
        name: String,
    },
}

/// Filters shared by `audit query` and `audit export`.
#[derive(clap::Args)]
struct FilterArgs {
    /// Recorded at or after (RFC 3339).
    #[arg(long)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded before (RFC 3339).
    #[arg(long)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Principal id.
    #[arg(long)]
    principal: Option<String>,
    /// Tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Qualified tool name.
    #[arg(long)]
    tool: Option<String>,
    /// allow, deny or none.
    #[arg(long)]
    decision: Option<String>,
    /// ok or an error code.
    #[arg(long)]
    outcome: Option<String>,
    /// Session or trace id.
    #[arg(long)]
    session: Option<String>,
    /// Only side-effecting calls whose outcome was never recorded (a crash mid-call).
    #[arg(long)]
    incomplete: bool,
}

impl FilterArgs {
    fn into_filter(self, limit: Option<i64>) -> warden::audit::AuditFilter {
        warden::audit::AuditFilter {
            since: self.since,
            until: self.until,
            principal: self.principal,
            tenant: self.tenant,
            tool: self.tool,
            decision: self.decision,
            outcome: self.outcome,
            session: self.session,
            incomplete: self.incomplete,
            limit,
        }
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the most recent records as JSON lines.
    Tail {
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: i64,
    },
    /// Records matching filters, as JSON lines (oldest first).
    Query {
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many records.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Every record matching filters, as JSON lines, for SIEMs.
    Export {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Recompute every hash chain; exit 1 naming the first bad record.
    Verify {
        /// Only records recorded at or after (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only records recorded before (RFC 3339).
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Also prove that nothing this exported checkpoint attests was
        /// removed (a file from `warden audit checkpoint`).
        #[arg(long, value_name = "CHECKPOINT", conflicts_with_all = ["since", "until"])]
        against: Option<PathBuf>,
        /// Hex ed25519 public key that signed the checkpoint (by default the
        /// key of `audit.checkpoint_key`).
        #[arg(long, requires = "against")]
        public_key: Option<String>,
    },
    /// Print the latest signed checkpoint of every chain head as JSON, to keep
    /// somewhere the database's writers cannot reach.
    Checkpoint {
        /// Sign a new one now (needs `audit.checkpoint_key`) instead of printing the latest.
        #[arg(long)]
        new: bool,
    },
    /// Re-decide a recorded call under another bundle and show any difference
    /// (needs `audit.store_policy_input = true` when the call was made).
    Replay {
        /// The call's id.
        call_id: String,
        /// Bundle directory to decide with.
        #[arg(long)]
        policy: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| "warn,warden=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = match cli.command {
        Command::Policy { command } => return policy(&command),
        other => other,
    };
    // Every other command works on the host configuration.
    let config = Config::load(&cli.config)?;
    match command {
        Command::Serve { listen } => {
            let kernel = Arc::new(Kernel::start(&config).await?);
            let listen = listen.unwrap_or_else(|| config.server.listen.clone());
            warden::server::serve(kernel, &config.server, &listen)
                .await
                .with_context(|| format!("serving on {listen}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Call {
            tool,
            args,
            principal,
        } => {
            let args: serde_json::Value =
                serde_json::from_str(&args).context("ARGS is not valid JSON")?;
            let kernel = Kernel::start(&config).await?;
            let principal = kernel.principals().by_id(&principal).with_context(|| {
                format!("no principal `{principal}` in {}", config.path.display())
            })?;
            let response = kernel
                .call(CallRequest {
                    principal,
                    tool,
                    args,
                    session: None,
                })
                .await;
            match response.result {
                Ok(output) => {
                    println!("{}", serde_json::to_string_pretty(&output)?);
                    eprintln!("call {}: ok", response.call_id);
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("call {}: {error}", response.call_id);
                    Ok(ExitCode::from(error.code.exit_code()))
                }
            }
        }
        Command::Mcp { principal } => {
            let kernel = Arc::new(Kernel::start(&config).await?);
            let principal = kernel.principals().by_id(&principal).with_context(|| {
                format!("no principal `{principal}` in {}", config.path.display())
            })?;
            warden::mcp::serve_stdio(warden::mcp::McpServer::new(kernel, Some(principal)))
                .await
                .context("serving MCP over stdio")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools => {
            let kernel = Kernel::start(&config).await?;
            for tool in kernel.registry().tools() {
                let effects = if tool.side_effects {
                    " [side effects]"
                } else {
                    ""
                };
                println!("{}{effects}\n    {}", tool.name, tool.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins {
            command: PluginsCommand::Inspect { name },
        } => {
            let kernel = Kernel::start(&config).await?;
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
        Command::Policy { command } => policy(&command),
        Command::Migrate => {
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
        Command::Audit { command } => {
            let store = warden::audit::AuditStore::connect(
                &config.audit_url,
                config
                    .audit
                    .commit_timeout
                    .max(std::time::Duration::from_secs(5)),
            )
            .await?;
            store.migrate().await?;
            match command {
                AuditCommand::Query { filter, limit } => {
                    for record in store.query(&filter.into_filter(Some(limit))).await? {
                        println!("{}", serde_json::to_string(&record)?);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                AuditCommand::Export { filter } => {
                    for record in store.query(&filter.into_filter(None)).await? {
                        println!("{}", serde_json::to_string(&record)?);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                AuditCommand::Tail { lines } => {
                    for record in store.tail(lines).await? {
                        println!("{}", serde_json::to_string(&record)?);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                AuditCommand::Replay { call_id, policy } => {
                    let record = store
                        .by_call_id(&call_id)
                        .await?
                        .with_context(|| format!("no audit record for call {call_id}"))?;
                    let input = record.record.policy_input.as_deref().with_context(|| {
                        format!(
                            "call {call_id} was recorded without its policy input; set \
                             `audit.store_policy_input = true` to make calls replayable"
                        )
                    })?;
                    let input: serde_json::Value = serde_json::from_str(input)?;
                    let bundle = warden::policy::PolicyBundle::load(
                        &policy,
                        &warden::policy::LoadOptions::default(),
                    )?;
                    let replayed = bundle.decide(
                        warden::policy::Stage::Call,
                        &warden::policy::PolicyInput::from_json(&input),
                    );
                    let (decision, reasons) = match &replayed {
                        Ok(d) => (if d.allow { "allow" } else { "deny" }, d.reasons.clone()),
                        Err(e) => ("error", vec![e.clone()]),
                    };
                    let differs =
                        decision != record.record.decision || reasons != record.record.reasons;
                    let report = serde_json::json!({
                        "call_id": call_id,
                        "recorded": {
                            "policy_hash": record.record.policy_hash,
                            "decision": record.record.decision,
                            "reasons": record.record.reasons,
                        },
                        "replayed": {
                            "policy_hash": bundle.hash(),
                            "decision": decision,
                            "reasons": reasons,
                        },
                        "differs": differs,
                    });
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    Ok(ExitCode::from(u8::from(differs)))
                }
                AuditCommand::Verify {
                    since,
                    until,
                    against,
                    public_key,
                } => {
                    let report = match against {
                        Some(path) => {
                            let key = checkpoint_public_key(&config, public_key.as_deref())?;
                            let text = std::fs::read_to_string(&path)
                                .with_context(|| format!("reading {}", path.display()))?;
                            let checkpoint: warden::audit::checkpoint::Checkpoint =
                                serde_json::from_str(&text).with_context(|| {
                                    format!("{} is not a checkpoint", path.display())
                                })?;
                            warden::audit::checkpoint::verify_against(&store, &checkpoint, &key)
                                .await?
                        }
                        None => {
                            let range = warden::audit::VerifyRange { since, until };
                            warden::audit::verify_range(&store, range).await?
                        }
                    };
                    match report.failure {
                        None => {
                            println!(
                                "ok: {} records in {} chains verified",
                                report.records, report.chains
                            );
                            Ok(ExitCode::SUCCESS)
                        }
                        Some(failure) => {
                            println!("FAILED: {failure}");
                            Ok(ExitCode::from(1))
                        }
                    }
                }
                AuditCommand::Checkpoint { new } => {
                    let checkpoint = if new {
                        let path = config.audit.checkpoint_key.as_ref().with_context(|| {
                            format!("set `audit.checkpoint_key` in {}", config.path.display())
                        })?;
                        let key = warden::audit::checkpoint::load_signing_key(path)?;
                        let signer = format!("warden audit checkpoint/{}", std::process::id());
                        warden::audit::checkpoint::create(&store, &key, &signer).await?
                    } else {
                        store.latest_checkpoint().await?.with_context(|| {
                            "no checkpoint yet: set `audit.checkpoint_key`, or run \
                             `warden audit checkpoint --new`"
                        })?
                    };
                    println!("{}", serde_json::to_string(&checkpoint)?);
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}

/// The key checkpoints are verified with: `--public-key`, else the public half
/// of `audit.checkpoint_key`.
fn checkpoint_public_key(
    config: &Config,
    hex_key: Option<&str>,
) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    if let Some(hex_key) = hex_key {
        return warden::policy::signature::public_key(hex_key).map_err(|m| anyhow::anyhow!(m));
    }
    let path = config.audit.checkpoint_key.as_ref().with_context(|| {
        format!(
            "pass --public-key, or set `audit.checkpoint_key` in {}",
            config.path.display()
        )
    })?;
    Ok(warden::audit::checkpoint::load_signing_key(path)?.verifying_key())
}

fn policy(command: &PolicyCommand) -> anyhow::Result<ExitCode> {
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
                    Ok(ExitCode::from(if decision.allow { 0 } else { 3 }))
                }
                Err(message) => {
                    eprintln!("policy-error: {message}");
                    Ok(ExitCode::from(3))
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
