//! The host configuration file (`warden.toml`): server, policy bundle, audit
//! store, principals, plugins and the capabilities granted to each.
//!
//! Relative paths are resolved against the directory of the config file, so a
//! config works from any working directory.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::capabilities::{GrantLoad, Grants, Limits, SecretValue};
use crate::error::{Error, Result};
use crate::manifest::validate_name;

/// A loaded, validated host configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Policy bundle settings.
    pub policy: PolicySettings,
    /// Store each call's policy input in its audit record (for `audit replay`).
    pub audit_store_policy_input: bool,
    /// Audit writer settings: spool, commit time-out, checkpoints (paths resolved).
    pub audit: crate::audit::AuditOptions,
    /// Audit store URL (`sqlite://…` paths resolved, or `postgres://…`).
    pub audit_url: String,
    /// Who may call, and as what.
    pub principals: Vec<PrincipalConfig>,
    /// Plugins by name, in name order.
    pub plugins: BTreeMap<String, PluginConfig>,
    /// Upstream MCP servers by name, in name order.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Verifiers by name, in name order.
    pub verifiers: BTreeMap<String, VerifierConfig>,
    /// Provider adapters by name, in name order.
    pub adapters: BTreeMap<String, AdapterConfig>,
    /// Models the gateway serves, by the name clients ask for.
    pub models: BTreeMap<String, ModelConfig>,
    /// Budgets (`[budgets.NAME]`, then `[rate_limits.NAME]`: budgets over a
    /// minute), in name order: written to the ledger at start.
    pub budgets: Vec<crate::budget::Budget>,
    /// What a call of a tool costs, by target glob (`[tool_prices]`).
    pub tool_prices: crate::budget::ToolPrices,
    /// Contracts the operator declared per target (`[contracts."GLOB"]`).
    pub contracts: crate::contract::Contracts,
    /// Host-wide limits and defaults.
    pub limits: Limits,
    /// Directory for precompiled components (`cache.dir`), created 0700 at
    /// start; `None` when caching is off.
    pub cache_dir: Option<PathBuf>,
    /// Secret values by name, resolved at load. Never shown, logged or audited.
    pub secrets: BTreeMap<String, SecretValue>,
    /// How sessions and labels are kept (`[sessions]`).
    pub sessions: SessionSettings,
    /// The gateway's response cache (`[response_cache]`); none when off.
    pub response_cache: Option<CacheSettings>,
}

/// `[response_cache]`: off unless configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// How long an entry answers, in seconds. By default 300.
    pub ttl_s: u64,
    /// Entries one tenant may hold; the oldest go first. By default 10000.
    pub max_entries_per_tenant: u64,
    /// Largest completion kept, in bytes. By default 1 MiB.
    pub max_entry_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl_s: 300,
            max_entries_per_tenant: 10_000,
            max_entry_bytes: 1 << 20,
        }
    }
}

/// Policy bundle settings (`[policy]`).
#[derive(Debug, Clone)]
pub struct PolicySettings {
    /// Active bundle directory.
    pub dir: PathBuf,
    /// Candidate bundle evaluated beside the active one; disagreements are audited.
    pub shadow_dir: Option<PathBuf>,
    /// How bundles are loaded: evaluation time limit, signature key.
    pub load: crate::policy::LoadOptions,
    /// How often `warden serve` checks the bundle for changes; `None` when off.
    pub reload_interval: Option<std::time::Duration>,
}

/// Where a secret's value comes from: an environment variable of the host
/// process (preferred) or the config itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// Read the value from this environment variable when the host starts.
    pub env: Option<String>,
    /// The value, in clear. Only for local setups.
    pub value: Option<String>,
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. By default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `Host` values MCP over HTTP accepts (DNS-rebinding protection). By
    /// default only loopback names; list your public host names when serving
    /// beyond this machine.
    #[serde(default)]
    pub mcp_allowed_hosts: Vec<String>,
    /// Browser origins MCP over HTTP accepts (`https://app.example.com:443`).
    /// By default none beyond the server's own loopback origins (`warden
    /// serve` adds `http://localhost:PORT` and its spellings): other
    /// requests carrying an `Origin` header are refused.
    #[serde(default)]
    pub mcp_allowed_origins: Vec<String>,
    /// How long `warden serve` waits, after SIGTERM or Ctrl-C, for the calls
    /// it took to be answered and their records to be flushed. By default 30 s.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}

fn default_drain_timeout_ms() -> u64 {
    30_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            mcp_allowed_hosts: Vec::new(),
            mcp_allowed_origins: Vec::new(),
            drain_timeout_ms: default_drain_timeout_ms(),
        }
    }
}

/// `[sessions]` settings, validated.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Where sessions, labels and usage counters live.
    pub store: SessionStore,
    /// How long labels stay on a principal. By default one hour.
    pub label_ttl: std::time::Duration,
    /// Labels that stick to the principal from every call, in a session or
    /// not. By default `["untrusted-content", "prompt-injection"]`.
    pub sticky_labels: Vec<String>,
    /// Sessions one principal may hold at once. By default 1000.
    pub max_per_principal: usize,
    /// Bytes of earlier outputs one session keeps for verifiers that check
    /// citations (`sources = true`); older outputs keep only their digest.
    /// By default 256 KiB.
    pub source_bytes: usize,
}

impl SessionSettings {
    /// Whether `label` sticks to the principal from every call.
    pub fn is_sticky(&self, label: &str) -> bool {
        self.sticky_labels.iter().any(|s| s == label)
    }
}

/// `[sessions] store`: where the call context lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStore {
    /// In this process: replicas do not share it, a restart forgets it.
    Memory,
    /// In the PostgreSQL audit database, shared by every replica.
    Database,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            store: SessionStore::Memory,
            label_ttl: std::time::Duration::from_secs(3600),
            sticky_labels: vec![
                "untrusted-content".to_string(),
                "prompt-injection".to_string(),
            ],
            max_per_principal: 1000,
            source_bytes: 256 * 1024,
        }
    }
}

/// A caller known to the host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// Stable identifier, recorded in the audit trail.
    pub id: String,
    /// Bearer token, in clear. Prefer `token_sha256` outside local setups.
    pub token: Option<String>,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: Option<String>,
    /// Roles, visible to policy as `input.principal.roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant. By default `default`.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Attributes for policy, e.g. `{ department = "finance", clearance = 2 }`.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl PrincipalConfig {
    /// The hex SHA-256 of the principal's token, from either form.
    pub(crate) fn token_digest(&self) -> Option<String> {
        match (&self.token, &self.token_sha256) {
            (Some(token), _) => Some(crate::digest::sha256_hex(token.as_bytes())),
            (None, Some(digest)) => Some(digest.to_ascii_lowercase()),
            (None, None) => None,
        }
    }
}

fn default_tenant() -> String {
    "default".to_string()
}

/// A plugin entry in the host configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Path to the plugin's manifest.
    pub manifest: PathBuf,
    /// Overrides the component path given in the manifest.
    pub component: Option<PathBuf>,
    /// Expected hex SHA-256 of the component; a mismatch refuses the load.
    pub sha256: Option<String>,
    /// Capabilities granted. By default none.
    #[serde(default)]
    pub grants: Grants,
    /// Load the plugin even if it requests capabilities that are not granted,
    /// with the reduced set. By default such a plugin is refused.
    #[serde(default)]
    pub allow_reduced: bool,
    /// The operator's word on each tool (`[plugins.NAME.tools.TOOL]`), which
    /// overrides what the plugin claims. By default none.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolPin>,
}

/// Where a component comes from and what it is granted: what the entries of
/// a plugin and of a verifier share.
#[derive(Debug)]
pub(crate) struct ComponentSource<'a> {
    pub(crate) manifest: &'a Path,
    pub(crate) component: Option<&'a Path>,
    pub(crate) sha256: Option<&'a str>,
    pub(crate) grants: &'a Grants,
    pub(crate) allow_reduced: bool,
}

impl PluginConfig {
    /// Its component and grants.
    pub(crate) fn source(&self) -> ComponentSource<'_> {
        ComponentSource {
            manifest: &self.manifest,
            component: self.component.as_deref(),
            sha256: self.sha256.as_deref(),
            grants: &self.grants,
            allow_reduced: self.allow_reduced,
        }
    }
}

impl VerifierConfig {
    /// Its component and grants.
    pub(crate) fn source(&self) -> ComponentSource<'_> {
        ComponentSource {
            manifest: &self.manifest,
            component: self.component.as_deref(),
            sha256: self.sha256.as_deref(),
            grants: &self.grants,
            allow_reduced: self.allow_reduced,
        }
    }
}

impl AdapterConfig {
    /// Its component; it is granted nothing but its limits.
    pub(crate) fn source(&self) -> ComponentSource<'_> {
        ComponentSource {
            manifest: &self.manifest,
            component: self.component.as_deref(),
            sha256: self.sha256.as_deref(),
            grants: &self.grants,
            allow_reduced: false,
        }
    }
}

/// A provider adapter in the host configuration (`[adapters.NAME]`): a
/// component of kind `provider`. It is granted no capability, only limits:
/// the host owns the transport.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    /// Path to the adapter's manifest (`kind = "provider"`).
    pub manifest: PathBuf,
    /// Overrides the component path given in the manifest.
    pub component: Option<PathBuf>,
    /// Expected hex SHA-256 of the component; a mismatch refuses the load.
    pub sha256: Option<String>,
    /// Its limits (memory, time per translation, concurrency) as grants
    /// that give no capability.
    pub grants: Grants,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterSection {
    manifest: PathBuf,
    component: Option<PathBuf>,
    sha256: Option<String>,
    memory_mb: Option<u64>,
    time_limit_ms: Option<u64>,
    max_concurrent: Option<u32>,
}

/// A model the gateway serves (`[models.NAME]`): which adapter translates
/// for it, where its provider is and what it costs.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// What it does: chat completions or embeddings.
    pub kind: ModelKind,
    /// The adapter (`[adapters.NAME]`) that speaks its provider's API.
    pub adapter: String,
    /// The provider's id for the model, sent upstream.
    pub upstream_model: String,
    /// Where the provider is: `scheme://host[:port]`, nothing else. Requests
    /// go only here.
    pub origin: url::Url,
    /// The credential the host presents to `origin`, where the adapter says.
    pub secret: Option<crate::capabilities::SecretValue>,
    /// What people see of it in `GET /v1/models`.
    pub description: String,
    /// Its context window in tokens, when known.
    pub context_window: Option<u32>,
    /// Its prices; none when not configured (a money budget then refuses it).
    pub prices: Option<Prices>,
    /// How its prompt tokens are counted for a reservation.
    pub tokenizer: crate::tokens::Tokenizer,
    /// The most tokens one completion may produce: what a reservation
    /// counts and sends upstream as `max_tokens` when no smaller cap is asked.
    pub max_output_tokens: u32,
    /// Labels a completion adds to its session.
    pub labels: Vec<String>,
    /// Longest a completion may take, from request to last byte.
    pub time_limit: std::time::Duration,
    /// Completions that may run at once.
    pub max_concurrent: u32,
    /// Largest answer accepted from the provider, in bytes.
    pub max_response_bytes: usize,
    /// Models of the same kind tried in order when this one is rate
    /// limited, unavailable or too slow (each must be configured).
    pub fallbacks: Vec<String>,
    /// How long a model that failed that way is passed over for its fallbacks.
    pub cooldown: std::time::Duration,
    /// In which order it and its fallbacks are tried.
    pub choose: Choose,
}

/// In which order a model and its fallbacks are tried (`choose`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choose {
    /// The model, then its fallbacks as listed.
    #[default]
    Ordered,
    /// By price: input plus output per token, the lowest first (a model
    /// without prices last).
    Cheapest,
    /// By latency measured on this host (a mean of its recent non-streamed
    /// completions), the lowest first; a model not yet measured first, so
    /// it is measured.
    Fastest,
}

/// What a model does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Chat completions (`POST /v1/chat/completions`).
    #[default]
    Chat,
    /// Embeddings (`POST /v1/embeddings`).
    Embeddings,
}

impl ModelKind {
    /// `chat` or `embeddings`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Embeddings => "embeddings",
        }
    }
}

/// Prices of a model as configured: US dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesSection {
    #[serde(default)]
    input: f64,
    cached_input: Option<f64>,
    #[serde(default)]
    output: f64,
}

/// Prices of a model per token, in millionths of a millionth of a US
/// dollar (so a price of $1 per million tokens is 1,000,000): integers, so
/// costs are exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prices {
    /// Per prompt token.
    pub input: u64,
    /// Per prompt token served from the provider's cache.
    pub cached_input: u64,
    /// Per completion token.
    pub output: u64,
}

impl PricesSection {
    /// The integer prices, or why these cannot be.
    fn prices(self) -> std::result::Result<Prices, String> {
        let per_token = |dollars_per_million: f64| {
            let pico = dollars_per_million * 1e6;
            if !(0.0..=1e12).contains(&pico) {
                return Err(format!(
                    "`{dollars_per_million}` must be a price from 0 to 1,000,000 dollars per million tokens"
                ));
            }
            if (pico - pico.round()).abs() > 1e-6 * pico.max(1.0) {
                return Err(format!(
                    "`{dollars_per_million}` has more than 6 decimal places"
                ));
            }
            Ok(pico.round() as u64)
        };
        let input = per_token(self.input)?;
        Ok(Prices {
            input,
            cached_input: self
                .cached_input
                .map(per_token)
                .transpose()?
                .unwrap_or(input),
            output: per_token(self.output)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    #[serde(default)]
    kind: ModelKind,
    adapter: String,
    upstream_model: String,
    origin: String,
    secret: Option<String>,
    #[serde(default)]
    description: String,
    context_window: Option<u32>,
    prices: Option<PricesSection>,
    /// By default the upstream model's, when Warden has it; else `bytes`.
    tokenizer: Option<crate::tokens::Tokenizer>,
    /// By default 4096.
    max_output_tokens: Option<u32>,
    #[serde(default)]
    labels: Vec<String>,
    /// By default 120000.
    time_limit_ms: Option<u64>,
    /// By default 64.
    max_concurrent: Option<u32>,
    /// By default 8 MiB (an adapter decodes it within its memory limit).
    max_response_bytes: Option<usize>,
    #[serde(default)]
    fallbacks: Vec<String>,
    /// By default 30.
    cooldown_s: Option<u64>,
    #[serde(default)]
    choose: Choose,
}

/// Model names: what clients send as `model`.
pub fn validate_model_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be 1 to 128 characters of letters, digits, `.`, `_`, `-`, `:` or `/`"
        ))
    }
}

/// `origin` if it is `http(s)://host[:port]` with nothing else.
fn parse_origin(origin: &str) -> std::result::Result<url::Url, String> {
    let url = url::Url::parse(origin).map_err(|e| format!("`{origin}`: {e}"))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if bare {
        Ok(url)
    } else {
        Err(format!(
            "`{origin}` must be an origin, `http(s)://host[:port]`, with no path, query or \
             credentials (the adapter gives the path)"
        ))
    }
}

/// Resolves a plugin's or verifier's paths against the config's directory
/// and checks its pin and its grants; `Err` names the field under the entry.
fn resolve_component(
    manifest: &mut PathBuf,
    component: &mut Option<PathBuf>,
    sha256: Option<&str>,
    grants: &mut Grants,
    load: &GrantLoad<'_>,
) -> std::result::Result<(), (String, String)> {
    *manifest = load.base.join(&*manifest);
    *component = component.take().map(|c| load.base.join(c));
    if let Some(pin) = sha256
        && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(("sha256".into(), "must be 64 hex characters".into()));
    }
    grants
        .validate(load)
        .map_err(|(f, m)| (format!("grants.{f}"), m))
}

/// A verifier entry in the host configuration (`[verifiers.NAME]`): the
/// component, what it is granted, and where it applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// Path to the verifier's manifest (`kind = "verifier"`).
    pub manifest: PathBuf,
    /// Overrides the component path given in the manifest.
    pub component: Option<PathBuf>,
    /// Expected hex SHA-256 of the component; a mismatch refuses the load.
    pub sha256: Option<String>,
    /// Capabilities granted. By default none.
    #[serde(default)]
    pub grants: Grants,
    /// Load the verifier even if it requests capabilities that are not
    /// granted, with the reduced set. By default such a verifier is refused.
    #[serde(default)]
    pub allow_reduced: bool,
    /// The stages it examines. By default both.
    #[serde(default = "VerifierStage::both")]
    pub stages: Vec<VerifierStage>,
    /// Qualified names of the targets it examines, each a glob where `*`
    /// stands for any run of characters (`fetch.*`, `*`). By default all.
    #[serde(default = "all_targets")]
    pub targets: Vec<String>,
    /// An advisory verifier's failures are reported (`input.verdicts.NAME.advisory`)
    /// and the default bundle does not deny on them. By default false.
    #[serde(default)]
    pub advisory: bool,
    /// Show it the outputs returned earlier in the call's session (for
    /// grounding checks). They may hold anything those tools returned, so
    /// by default false.
    #[serde(default)]
    pub sources: bool,
}

/// Which side of a call a verifier examines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifierStage {
    /// The call's arguments, before the target runs.
    Input,
    /// The target's output, before the caller sees it.
    Output,
}

impl VerifierStage {
    fn both() -> Vec<VerifierStage> {
        vec![VerifierStage::Input, VerifierStage::Output]
    }

    /// The name used in policy input and audit records.
    pub fn name(self) -> &'static str {
        match self {
            VerifierStage::Input => "input",
            VerifierStage::Output => "output",
        }
    }
}

fn all_targets() -> Vec<String> {
    vec!["*".to_string()]
}

/// Most target globs one verifier may list, and their longest spelling.
const TARGETS_MAX: usize = 64;
const TARGET_MAX: usize = 256;

/// What the operator pins about one tool, over the plugin's or upstream's
/// claims (`[plugins.NAME.tools.TOOL]`, `[upstreams.NAME.pins.TOOL]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPin {
    /// Whether calls may have side effects. By default derived from what the
    /// tool can do; `false` accepts a claim of none that the tool's
    /// capabilities would contradict.
    pub side_effects: Option<bool>,
    /// Labels every call adds to its session, besides the tool's own. By
    /// default none.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Use `labels` instead of the tool's own labels. By default false: the
    /// operator's labels only add.
    #[serde(default)]
    pub replace_labels: bool,
}

/// An MCP server behind Warden (`[upstreams.NAME]`), resolved.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// How to reach it.
    pub transport: UpstreamTransport,
    /// Its tools to serve; by default all it lists.
    pub tools: Option<Vec<String>>,
    /// Labels every call of its tools adds to the session.
    pub labels: Vec<String>,
    /// The operator's word on single tools (`[upstreams.NAME.pins.TOOL]`).
    /// An upstream tool has side effects unless pinned `side_effects = false`.
    pub pins: BTreeMap<String, ToolPin>,
    /// Time limit per call; by default `limits.default_time_limit_ms`.
    pub time_limit_ms: Option<u64>,
    /// Calls that may run at once; by default `limits.default_max_concurrent`.
    pub max_concurrent: Option<u32>,
}

/// How an upstream is reached.
#[derive(Debug, Clone)]
pub enum UpstreamTransport {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio {
        /// Program and arguments.
        command: Vec<String>,
        /// Its whole environment besides `PATH`.
        env: BTreeMap<String, String>,
        /// Its working directory; by default the config file's directory.
        cwd: Option<PathBuf>,
    },
    /// A server speaking streamable HTTP.
    Http {
        /// The MCP endpoint.
        url: String,
        /// Sent as `Authorization: Bearer …`.
        bearer: Option<SecretValue>,
    },
}

impl UpstreamTransport {
    /// The command line or URL, as recorded in the audit trail.
    pub fn endpoint(&self) -> String {
        match self {
            UpstreamTransport::Stdio { command, .. } => command.join(" "),
            UpstreamTransport::Http { url, .. } => url.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamSection {
    command: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    /// Name of a `[secrets.NAME]` sent as a bearer token to `url`.
    bearer_secret: Option<String>,
    tools: Option<Vec<String>>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    pins: BTreeMap<String, ToolPin>,
    time_limit_ms: Option<u64>,
    max_concurrent: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    server: ServerConfig,
    policy: PolicySection,
    audit: AuditSection,
    #[serde(default)]
    principals: Vec<PrincipalConfig>,
    #[serde(default)]
    plugins: BTreeMap<String, PluginConfig>,
    #[serde(default)]
    upstreams: BTreeMap<String, UpstreamSection>,
    #[serde(default)]
    verifiers: BTreeMap<String, VerifierConfig>,
    #[serde(default)]
    adapters: BTreeMap<String, AdapterSection>,
    #[serde(default)]
    models: BTreeMap<String, ModelSection>,
    #[serde(default)]
    budgets: BTreeMap<String, crate::budget::BudgetSection>,
    #[serde(default)]
    rate_limits: BTreeMap<String, crate::budget::RateLimitSection>,
    #[serde(default)]
    tool_prices: BTreeMap<String, f64>,
    #[serde(default)]
    contracts: BTreeMap<String, crate::contract::ContractSection>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    secrets: BTreeMap<String, SecretConfig>,
    #[serde(default)]
    cache: CacheSection,
    #[serde(default)]
    sessions: SessionsSection,
    response_cache: Option<CacheSettings>,
}

/// `[sessions]`: where the call context lives, how long labels stick to a
/// principal, which always do, and how many sessions one principal may hold.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SessionsSection {
    /// By default `database` with a PostgreSQL audit store and no spool,
    /// else `memory`.
    store: Option<SessionStore>,
    /// By default 3600.
    label_ttl_s: Option<u64>,
    /// By default `["untrusted-content", "prompt-injection"]`.
    sticky_labels: Option<Vec<String>>,
    /// By default 1000.
    max_per_principal: Option<usize>,
    /// By default 262144.
    source_bytes: Option<usize>,
}

/// `[cache]`: where precompiled components are kept.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CacheSection {
    /// By default `$XDG_CACHE_HOME/warden` or `~/.cache/warden`.
    dir: Option<PathBuf>,
    /// By default true.
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    dir: PathBuf,
    /// By default 100 ms.
    #[serde(default = "default_policy_timeout_ms")]
    timeout_ms: u64,
    /// By default 2000 ms; 0 turns hot reload off.
    #[serde(default = "default_reload_interval_ms")]
    reload_interval_ms: u64,
    /// Candidate bundle for shadow mode. By default none.
    shadow_dir: Option<PathBuf>,
    /// Hex ed25519 public key; when set, unsigned bundles are refused.
    public_key: Option<String>,
}

fn default_policy_timeout_ms() -> u64 {
    100
}

fn default_reload_interval_ms() -> u64 {
    2000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditSection {
    url: String,
    /// By default false: only an argument digest is stored.
    #[serde(default)]
    store_policy_input: bool,
    /// By default none: when the store is unreachable, calls are denied.
    spool: Option<PathBuf>,
    /// By default 2000: a commit taking longer counts as a store failure.
    #[serde(default = "default_commit_timeout_ms")]
    commit_timeout_ms: u64,
    /// By default none: no signed checkpoints.
    checkpoint_key: Option<PathBuf>,
    /// By default 60000.
    #[serde(default = "default_checkpoint_interval_ms")]
    checkpoint_interval_ms: u64,
    /// By default `flush`.
    #[serde(default)]
    durability: crate::audit::Durability,
}

fn default_commit_timeout_ms() -> u64 {
    2000
}

fn default_checkpoint_interval_ms() -> u64 {
    60_000
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |field: String, message: String| Error::Config {
            path: path.to_path_buf(),
            message: format!("field `{field}`: {message}"),
        };
        let base = path.parent().unwrap_or(Path::new("."));

        let public_key = file
            .policy
            .public_key
            .as_deref()
            .map(crate::policy::signature::public_key)
            .transpose()
            .map_err(|m| invalid("policy.public_key".into(), m))?;
        let audit_url =
            resolve_audit_url(&file.audit.url, base).map_err(|m| invalid("audit.url".into(), m))?;

        let mut ids = HashSet::new();
        let mut tokens = HashSet::new();
        for (i, p) in file.principals.iter().enumerate() {
            let field = |name: &str| format!("principals[{i}].{name}");
            if p.id.is_empty() {
                return Err(invalid(field("id"), "must not be empty".into()));
            }
            if !ids.insert(p.id.clone()) {
                return Err(invalid(field("id"), format!("`{}` is defined twice", p.id)));
            }
            match (&p.token, &p.token_sha256) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        field("token"),
                        "set either `token` or `token_sha256`, not both".into(),
                    ));
                }
                (Some(t), None) if t.len() < 8 => {
                    return Err(invalid(
                        field("token"),
                        "must be at least 8 characters".into(),
                    ));
                }
                (None, Some(h)) if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    return Err(invalid(
                        field("token_sha256"),
                        "must be 64 hex characters".into(),
                    ));
                }
                _ => {}
            }
            if let Some(digest) = p.token_digest()
                && !tokens.insert(digest)
            {
                return Err(invalid(
                    field("token"),
                    "is used by another principal".into(),
                ));
            }
        }

        let mut secrets = BTreeMap::new();
        for (name, secret) in &file.secrets {
            let field = |f: &str| format!("secrets.{name}.{f}");
            let value = match (&secret.env, &secret.value) {
                (Some(var), None) => std::env::var(var).map_err(|_| {
                    invalid(
                        field("env"),
                        format!("environment variable `{var}` is not set"),
                    )
                })?,
                (None, Some(value)) => value.clone(),
                _ => {
                    return Err(invalid(
                        format!("secrets.{name}"),
                        "set exactly one of `env` or `value`".into(),
                    ));
                }
            };
            secrets.insert(name.clone(), SecretValue::new(value));
        }

        let load = GrantLoad {
            base,
            secrets: &secrets,
        };
        let mut plugins = BTreeMap::new();
        for (name, mut plugin) in file.plugins {
            let field = |f: &str| format!("plugins.{name}.{f}");
            validate_name(&name).map_err(|m| invalid(format!("plugins.{name}"), m))?;
            resolve_component(
                &mut plugin.manifest,
                &mut plugin.component,
                plugin.sha256.as_deref(),
                &mut plugin.grants,
                &load,
            )
            .map_err(|(f, m)| invalid(field(&f), m))?;
            plugins.insert(name, plugin);
        }
        let mut verifiers = BTreeMap::new();
        for (name, mut verifier) in file.verifiers {
            let field = |f: &str| format!("verifiers.{name}.{f}");
            validate_name(&name).map_err(|m| invalid(format!("verifiers.{name}"), m))?;
            resolve_component(
                &mut verifier.manifest,
                &mut verifier.component,
                verifier.sha256.as_deref(),
                &mut verifier.grants,
                &load,
            )
            .map_err(|(f, m)| invalid(field(&f), m))?;
            if verifier.stages.is_empty() {
                return Err(invalid(
                    field("stages"),
                    "must name at least one of \"input\", \"output\"".into(),
                ));
            }
            if verifier.targets.is_empty() || verifier.targets.len() > TARGETS_MAX {
                return Err(invalid(
                    field("targets"),
                    format!("must list 1 to {TARGETS_MAX} globs (\"*\" for every target)"),
                ));
            }
            for (i, target) in verifier.targets.iter().enumerate() {
                if target.is_empty()
                    || target.len() > TARGET_MAX
                    || target.chars().any(char::is_control)
                {
                    return Err(invalid(
                        field(&format!("targets[{i}]")),
                        format!("must be 1 to {TARGET_MAX} characters without control characters"),
                    ));
                }
            }
            verifiers.insert(name, verifier);
        }
        let mut adapters = BTreeMap::new();
        for (name, section) in file.adapters {
            let field = |f: &str| format!("adapters.{name}.{f}");
            validate_name(&name).map_err(|m| invalid(format!("adapters.{name}"), m))?;
            let mut adapter = AdapterConfig {
                manifest: section.manifest,
                component: section.component,
                sha256: section.sha256,
                grants: Grants {
                    memory_mb: section.memory_mb,
                    time_limit_ms: section.time_limit_ms,
                    max_concurrent: section.max_concurrent,
                    ..Grants::default()
                },
            };
            resolve_component(
                &mut adapter.manifest,
                &mut adapter.component,
                adapter.sha256.as_deref(),
                &mut adapter.grants,
                &load,
            )
            .map_err(|(f, m)| invalid(field(&f), m))?;
            adapters.insert(name, adapter);
        }
        let mut models = BTreeMap::new();
        for (name, section) in file.models {
            let field = |f: &str| format!("models.\"{name}\".{f}");
            validate_model_name(&name).map_err(|m| invalid(format!("models.\"{name}\""), m))?;
            if !adapters.contains_key(&section.adapter) {
                return Err(invalid(
                    field("adapter"),
                    format!("no `[adapters.{}]` is defined", section.adapter),
                ));
            }
            if section.upstream_model.is_empty()
                || section.upstream_model.len() > 256
                || section.upstream_model.chars().any(char::is_control)
            {
                return Err(invalid(
                    field("upstream_model"),
                    "must be 1 to 256 characters without control characters".into(),
                ));
            }
            let origin = parse_origin(&section.origin).map_err(|m| invalid(field("origin"), m))?;
            let secret = match &section.secret {
                Some(secret) => Some(secrets.get(secret).cloned().ok_or_else(|| {
                    invalid(
                        field("secret"),
                        format!("no `[secrets.{secret}]` is defined"),
                    )
                })?),
                None => None,
            };
            let prices = section
                .prices
                .map(PricesSection::prices)
                .transpose()
                .map_err(|m| invalid(field("prices"), m))?;
            let max_output_tokens = section.max_output_tokens.unwrap_or(4096);
            if max_output_tokens == 0 {
                return Err(invalid(
                    field("max_output_tokens"),
                    "must be at least 1".into(),
                ));
            }
            for (i, label) in section.labels.iter().enumerate() {
                validate_name(label).map_err(|m| invalid(field(&format!("labels[{i}]")), m))?;
            }
            let tokenizer = section
                .tokenizer
                .unwrap_or_else(|| crate::tokens::Tokenizer::for_model(&section.upstream_model));
            let time_limit_ms = section.time_limit_ms.unwrap_or(120_000);
            if time_limit_ms == 0 {
                return Err(invalid(field("time_limit_ms"), "must be at least 1".into()));
            }
            models.insert(
                name,
                ModelConfig {
                    kind: section.kind,
                    adapter: section.adapter,
                    upstream_model: section.upstream_model,
                    origin,
                    secret,
                    description: section.description,
                    context_window: section.context_window,
                    prices,
                    tokenizer,
                    max_output_tokens,
                    labels: section.labels,
                    time_limit: std::time::Duration::from_millis(time_limit_ms),
                    max_concurrent: section.max_concurrent.unwrap_or(64).max(1),
                    max_response_bytes: section.max_response_bytes.unwrap_or(8 << 20).max(1),
                    fallbacks: section.fallbacks,
                    cooldown: std::time::Duration::from_secs(section.cooldown_s.unwrap_or(30)),
                    choose: section.choose,
                },
            );
        }
        for (name, model) in &models {
            for (i, fallback) in model.fallbacks.iter().enumerate() {
                let field = format!("models.\"{name}\".fallbacks[{i}]");
                match models.get(fallback) {
                    None => {
                        return Err(invalid(
                            field,
                            format!("no `[models.\"{fallback}\"]` is defined"),
                        ));
                    }
                    Some(other) if other.kind != model.kind || fallback == name => {
                        return Err(invalid(
                            field,
                            format!("`{fallback}` must be another {} model", model.kind.name()),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let mut budgets: Vec<crate::budget::Budget> = Vec::new();
        let declared = file
            .budgets
            .into_iter()
            .map(|(name, section)| ("budgets", section.budget(&name), name))
            .chain(
                file.rate_limits
                    .into_iter()
                    .map(|(name, section)| ("rate_limits", section.budget(&name), name)),
            );
        for (table, budget, name) in declared {
            let budget = budget.map_err(|(field, message)| {
                let at = if field.is_empty() {
                    format!("{table}.{name}")
                } else {
                    format!("{table}.{name}.{field}")
                };
                invalid(at, message)
            })?;
            if budgets.iter().any(|b| b.name == name) {
                return Err(invalid(
                    format!("{table}.{name}"),
                    "a budget and a rate limit share one namespace: this name is taken".into(),
                ));
            }
            if let Some(model) = &budget.scope.model
                && !models.contains_key(model)
            {
                return Err(invalid(
                    format!("{table}.{name}.model"),
                    format!("no `[models.\"{model}\"]` is defined"),
                ));
            }
            budgets.push(budget);
        }
        let tool_prices = crate::budget::ToolPrices::new(file.tool_prices)
            .map_err(|(glob, message)| invalid(format!("tool_prices.\"{glob}\""), message))?;
        let mut contracts = Vec::new();
        for (targets, section) in file.contracts {
            let field = |f: &str| format!("contracts.\"{targets}\".{f}");
            if targets.is_empty()
                || targets.len() > TARGET_MAX
                || targets.chars().any(char::is_control)
            {
                return Err(invalid(
                    format!("contracts.\"{targets}\""),
                    format!(
                        "must be a glob of 1 to {TARGET_MAX} characters without control characters"
                    ),
                ));
            }
            let load = |path: Option<PathBuf>, f: &str| {
                path.map(|p| crate::contract::load(&base.join(p)))
                    .transpose()
                    .map_err(|m| invalid(field(f), m))
            };
            contracts.push(crate::contract::DeclaredContract {
                input: load(section.input, "input")?,
                output: load(section.output, "output")?,
                targets,
            });
        }
        let grants: Vec<(&str, &Grants)> = plugins
            .iter()
            .map(|(name, plugin): (&String, &PluginConfig)| (name.as_str(), &plugin.grants))
            .chain(verifiers.iter().map(|(name, v)| (name.as_str(), &v.grants)))
            .collect();
        Grants::validate_across(&grants).map_err(|(field, message)| invalid(field, message))?;

        let mut upstreams = BTreeMap::new();
        for (name, upstream) in file.upstreams {
            let field = |f: &str| format!("upstreams.{name}.{f}");
            validate_name(&name).map_err(|m| invalid(format!("upstreams.{name}"), m))?;
            if plugins.contains_key(&name) {
                return Err(invalid(
                    format!("upstreams.{name}"),
                    format!("a plugin is also named `{name}`; tool names would clash"),
                ));
            }
            let transport = match (upstream.command, upstream.url) {
                (Some(mut command), None) => {
                    if command.is_empty() || command[0].is_empty() {
                        return Err(invalid(field("command"), "must name a program".into()));
                    }
                    if upstream.bearer_secret.is_some() {
                        return Err(invalid(
                            field("bearer_secret"),
                            "only applies to `url` upstreams".into(),
                        ));
                    }
                    // `./server.py` is relative to the config; `python3` is looked up on PATH.
                    if command[0].contains('/') {
                        command[0] = base.join(&command[0]).display().to_string();
                    }
                    UpstreamTransport::Stdio {
                        command,
                        env: upstream.env,
                        cwd: Some(base.join(upstream.cwd.unwrap_or_default())),
                    }
                }
                (None, Some(url)) => {
                    let uri: http::Uri = url
                        .parse()
                        .map_err(|e| invalid(field("url"), format!("`{url}`: {e}")))?;
                    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                        return Err(invalid(
                            field("url"),
                            format!("`{url}` must be an http:// or https:// URL"),
                        ));
                    }
                    if !upstream.env.is_empty() || upstream.cwd.is_some() {
                        return Err(invalid(
                            field("env"),
                            "`env` and `cwd` only apply to `command` upstreams".into(),
                        ));
                    }
                    let bearer = match &upstream.bearer_secret {
                        Some(secret) => Some(secrets.get(secret).cloned().ok_or_else(|| {
                            invalid(
                                field("bearer_secret"),
                                format!("no `[secrets.{secret}]` is defined"),
                            )
                        })?),
                        None => None,
                    };
                    UpstreamTransport::Http { url, bearer }
                }
                _ => {
                    return Err(invalid(
                        format!("upstreams.{name}"),
                        "set exactly one of `command` (stdio) or `url` (streamable HTTP)".into(),
                    ));
                }
            };
            upstreams.insert(
                name,
                UpstreamConfig {
                    transport,
                    tools: upstream.tools,
                    labels: upstream.labels,
                    pins: upstream.pins,
                    time_limit_ms: upstream.time_limit_ms,
                    max_concurrent: upstream.max_concurrent,
                },
            );
        }

        let defaults = SessionSettings::default();
        // With a spool the audit keeps answering through a database outage;
        // context kept in the database would not, so a spool keeps it here
        // unless the operator asks for it to be shared.
        let shared_by_default = audit_url.starts_with("postgres") && file.audit.spool.is_none();
        let on_postgres = audit_url.starts_with("postgres");
        let sessions = SessionSettings {
            store: match file.sessions.store {
                Some(SessionStore::Database) if !on_postgres => {
                    return Err(invalid(
                        "sessions.store".into(),
                        "`database` keeps sessions in a PostgreSQL audit store; with this \
                         `audit.url` use `memory`"
                            .into(),
                    ));
                }
                Some(store) => store,
                None if shared_by_default => SessionStore::Database,
                None => SessionStore::Memory,
            },
            label_ttl: file
                .sessions
                .label_ttl_s
                .map_or(defaults.label_ttl, std::time::Duration::from_secs),
            sticky_labels: file
                .sessions
                .sticky_labels
                .unwrap_or(defaults.sticky_labels),
            max_per_principal: match file.sessions.max_per_principal {
                Some(0) => {
                    return Err(invalid(
                        "sessions.max_per_principal".into(),
                        "must be at least 1".into(),
                    ));
                }
                Some(n) => n,
                None => defaults.max_per_principal,
            },
            source_bytes: file.sessions.source_bytes.unwrap_or(defaults.source_bytes),
        };
        if let Some(cache) = &file.response_cache
            && (cache.ttl_s == 0 || cache.max_entries_per_tenant == 0 || cache.max_entry_bytes == 0)
        {
            return Err(invalid(
                "response_cache".into(),
                "`ttl_s`, `max_entries_per_tenant` and `max_entry_bytes` must be at least 1 \
                 (leave the section out to turn the cache off)"
                    .into(),
            ));
        }
        Ok(Config {
            response_cache: file.response_cache,
            path: path.to_path_buf(),
            server: file.server,
            policy: PolicySettings {
                dir: base.join(&file.policy.dir),
                shadow_dir: file.policy.shadow_dir.as_ref().map(|d| base.join(d)),
                load: crate::policy::LoadOptions {
                    timeout: std::time::Duration::from_millis(file.policy.timeout_ms.max(1)),
                    public_key,
                },
                reload_interval: (file.policy.reload_interval_ms > 0)
                    .then(|| std::time::Duration::from_millis(file.policy.reload_interval_ms)),
            },
            audit_store_policy_input: file.audit.store_policy_input,
            audit: crate::audit::AuditOptions {
                spool: file.audit.spool.as_ref().map(|p| base.join(p)),
                commit_timeout: std::time::Duration::from_millis(
                    file.audit.commit_timeout_ms.max(1),
                ),
                checkpoint_key: file.audit.checkpoint_key.as_ref().map(|p| base.join(p)),
                checkpoint_interval: std::time::Duration::from_millis(
                    file.audit.checkpoint_interval_ms.max(100),
                ),
                durability: file.audit.durability,
            },
            cache_dir: match (file.cache.enabled, &file.cache.dir) {
                (Some(false), _) => None,
                (_, Some(dir)) => Some(base.join(dir)),
                (_, None) => default_cache_dir(),
            },
            audit_url,
            principals: file.principals,
            plugins,
            upstreams,
            verifiers,
            adapters,
            models,
            budgets,
            tool_prices,
            contracts: crate::contract::Contracts::new(contracts),
            limits: file.limits,
            secrets,
            sessions,
        })
    }
}

/// `sqlite://relative.db` is taken relative to the config file; PostgreSQL URLs pass through.
fn resolve_audit_url(url: &str, base: &Path) -> std::result::Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(format!(
            "`{url}` must start with `sqlite:` or `postgres://`"
        ));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (file, query) = match rest.split_once('?') {
        Some((f, q)) => (f, Some(q)),
        None => (rest, None),
    };
    if file.is_empty() || file == ":memory:" {
        return Ok(url.to_string());
    }
    let path = base.join(file);
    let mut resolved = format!("sqlite://{}", path.display());
    if let Some(q) = query {
        resolved.push('?');
        resolved.push_str(q);
    }
    Ok(resolved)
}

/// `$XDG_CACHE_HOME/warden`, else `~/.cache/warden`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("warden"))
}
