//! The `warden` command line: serve the HTTP API, call a tool, list tools,
//! and read or verify the audit trail.
//!
//! Exit codes: 0 success; 1 audit verification failed; 2 configuration or
//! usage error; a failed call exits with its code's exit code
//! ([`ErrorCode::row`](warden::ErrorCode::row), listed in docs/errors.md).
//!
//! This file parses the arguments and dispatches; each command lives in its
//! own module under `cli/`.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use warden::config::{Config, VerifierStage};

fn parse_stage(stage: &str) -> Result<VerifierStage, String> {
    match stage {
        "input" => Ok(VerifierStage::Input),
        "output" => Ok(VerifierStage::Output),
        other => Err(format!("`{other}`: the stage is `input` or `output`")),
    }
}

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
    /// Log lines on stderr: `text`, or `json` (one object per line, with
    /// the call's id on every line logged during a call).
    #[arg(long, global = true, env = "WARDEN_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
        /// A contract file (docs/schemas/contract.v1.json) the output must
        /// satisfy, checked by the verifiers that check contracts.
        #[arg(long, value_name = "FILE")]
        contract: Option<std::path::PathBuf>,
    },
    /// Ask a model once through the gateway's pipeline, as a configured
    /// principal, and print its answer.
    Chat {
        /// Model name (`[models.NAME]`).
        model: String,
        /// The user's message.
        prompt: String,
        /// A system message before it.
        #[arg(long)]
        system: Option<String>,
        /// Principal id to ask as.
        #[arg(long = "as")]
        principal: String,
    },
    /// Serve MCP over stdio as one principal (for desktop and IDE MCP clients).
    Mcp {
        /// Principal id the client acts as.
        #[arg(long = "as")]
        principal: String,
    },
    /// List tools: with `--as`, those the principal may see (as MCP
    /// `tools/list` and `GET /v1/tools` show them); without, every configured tool.
    Tools {
        /// Principal id whose view to list.
        #[arg(long = "as")]
        principal: Option<String>,
    },
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
    /// Show, set and trace budgets and rate limits (the spend ledger in the audit store).
    Budgets {
        #[command(subcommand)]
        command: BudgetsCommand,
    },
    /// Apply audit store migrations and exit.
    Migrate,
    /// Run one verifier on a document and print its verdict (exit 0 clean,
    /// 1 findings, 3 the verifier failed).
    Verify {
        /// Verifier name in the host configuration.
        #[arg(long)]
        verifier: String,
        /// The document: JSON, or any text (checked as one JSON string).
        file: PathBuf,
        /// The stage to show the verifier: input or output.
        #[arg(long, default_value = "input", value_parser = parse_stage)]
        stage: VerifierStage,
        /// The target's qualified name to show the verifier.
        #[arg(long, default_value = "cli.verify")]
        target: String,
        /// Print the document with every finding redacted instead of the verdict.
        #[arg(long)]
        redact: bool,
    },
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
enum BudgetsCommand {
    /// Every budget (or one) with its current period's spend, as JSON lines.
    Show {
        /// Only this budget.
        name: Option<String>,
    },
    /// Set a budget's limit now (every replica sees it at once); a new
    /// budget also needs its period and, optionally, its scope. The change
    /// is kept in the budget's history, by `--by`.
    Set {
        /// The budget.
        name: String,
        /// The limit in US dollars.
        #[arg(
            long,
            conflicts_with_all = ["tokens", "requests"],
            required_unless_present_any = ["tokens", "requests"]
        )]
        usd: Option<f64>,
        /// The limit in tokens.
        #[arg(long, conflicts_with = "requests")]
        tokens: Option<u64>,
        /// The limit in requests (a rate limit, `--period minute`).
        #[arg(long)]
        requests: Option<u64>,
        /// A new budget's period: daily, monthly, total, or minute (a rate limit).
        #[arg(long, value_parser = ["daily", "monthly", "total", "minute"])]
        period: Option<String>,
        /// A new budget applies to this principal only.
        #[arg(long)]
        principal: Option<String>,
        /// ... to this tenant only.
        #[arg(long)]
        tenant: Option<String>,
        /// ... to this team only (a principal's `attributes.team`).
        #[arg(long)]
        team: Option<String>,
        /// ... to this model only.
        #[arg(long)]
        model: Option<String>,
        /// Who is making the change, for the history.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// A budget's limit changes and its ledger entries (newest first), as JSON.
    History {
        /// The budget.
        name: String,
        /// At most this many of each.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
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
        /// Verify these archive files (from `warden audit archive`) instead
        /// of the database, oldest first: each on its own, and each
        /// continuing the chains of the ones before it.
        #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["since", "until", "against"])]
        archive: Vec<PathBuf>,
    },
    /// Export every month that ended on or before a date to compressed JSON
    /// Lines (one verifiable file per month, with its chain heads), then
    /// drop it from the database.
    Archive {
        /// Archive the months that end on or before this day (UTC, YYYY-MM-DD).
        #[arg(long)]
        before: chrono::NaiveDate,
        /// Directory the archives are written to.
        #[arg(long, value_name = "DIR", required_unless_present = "dry_run")]
        to: Option<PathBuf>,
        /// Only say what would be archived.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the latest signed checkpoint of every chain head as JSON, to keep
    /// somewhere the database's writers cannot reach.
    Checkpoint {
        /// Sign a new one now (needs `audit.checkpoint_key`) instead of printing the latest.
        #[arg(long)]
        new: bool,
    },
    /// Print the text kept for a completion (policy's `keep_text`), opened
    /// with its tenant's key; exit 1 when that key was erased.
    Unseal {
        /// The completion's call id.
        call_id: String,
    },
    /// Delete a tenant's keys: every text kept for its completions can no
    /// longer be opened (the records stay, and still verify).
    EraseTenant {
        /// The tenant.
        tenant: String,
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
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| "warn,warden=info".into());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match cli.log_format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let telemetry = match warden::telemetry::Telemetry::from_env() {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Traces see Warden's spans down to its stages, whatever the log filter.
    let traces = telemetry.as_ref().map(|t| {
        t.layer().with_filter(
            tracing_subscriber::filter::Targets::new().with_target("warden", tracing::Level::DEBUG),
        )
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    };
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    code
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = match cli.command {
        Command::Policy { command } => return cli::policy::run(&command),
        other => other,
    };
    // Every other command works on the host configuration.
    let config = Config::load(&cli.config)?;
    match command {
        Command::Serve { listen } => cli::serve::run(&config, listen).await,
        Command::Call {
            tool,
            args,
            principal,
            contract,
        } => cli::call::run(&config, tool, args, principal, contract.as_deref()).await,
        Command::Chat {
            model,
            prompt,
            system,
            principal,
        } => cli::chat::run(&config, model, prompt, system, principal).await,
        Command::Mcp { principal } => cli::mcp::run(&config, principal).await,
        Command::Tools { principal } => cli::tools::run(&config, principal.as_deref()).await,
        Command::Plugins {
            command: PluginsCommand::Inspect { name },
        } => cli::plugins::inspect(&config, name).await,
        Command::Policy { command } => cli::policy::run(&command),
        Command::Budgets { command } => cli::budgets::run(&config, command).await,
        Command::Migrate => cli::migrate::run(&config).await,
        Command::Audit { command } => cli::audit::run(&config, command).await,
        Command::Verify {
            verifier,
            file,
            stage,
            target,
            redact,
        } => cli::verify::run(&config, &verifier, &file, stage, &target, redact).await,
    }
}
