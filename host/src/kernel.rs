//! The call pipeline. Every call, from every face (HTTP, MCP, CLI), goes
//! through [`Kernel::call`], in two halves around the run:
//!
//! - before the run ([`Kernel::admit`]): resolve tool -> session context ->
//!   policy decision -> validate args -> redactions of findings -> intent
//!   record (side effects); when a verifier examines the arguments, they are
//!   validated and verified before the decision, whose input the verdicts are;
//! - the run ([`Kernel::run`]): the tool's backend (a fresh sandbox, or an
//!   upstream MCP server);
//! - after the run ([`Kernel::finish`]): output checks -> output verifiers
//!   -> output decision -> labels and redactions -> audit record (committed)
//!   -> response.
//!
//! Each stage is one function returning a typed value; a streaming face can
//! hold an [`Admitted`] call open between the halves.
//!
//! Failures at any stage are results with a stable [`ErrorCode`], recorded in
//! the audit trail like successes. If the record cannot be committed the
//! caller gets `audit-unavailable` instead of the result: nothing is returned
//! that the trail does not hold.

mod cached;
mod fallback;
mod lifecycle;
mod spend;
mod streaming;

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::{Value, json};
use tracing::Instrument;

use crate::audit::{AuditLog, AuditRecord, StageDecision, VerdictRecord};
use crate::backend::{Invocation, OutputForm};
use crate::bounds::bounded;
use crate::capabilities::Effective;
use crate::config::{Config, ModelKind, PolicySettings, VerifierStage};
use crate::contract::Contracts;
use crate::digest::sha256_hex;
use crate::error::{CallError, ErrorCode, Result};
use crate::gateway::CompletionRecord;
use crate::metrics::{Metrics, Stage as MetricStage};
use crate::policy::input::{
    self, BudgetPart, CompletionPart, Input, InputValue, PrincipalPart, SessionPart, TargetPart,
    TimePart, UsagePart,
};
use crate::policy::{
    BundleFiles, Decision, NarrowedLimits, PolicyBundle, PolicyInput, Stage, json_value,
};
use crate::principal::{Principal, Principals};
use crate::registry::{Registry, TargetKind, ToolEntry};
use crate::sandbox::Sandbox;
use crate::session::{CallContext, CallLabels, Source, check_session_id};
use crate::tokens::Tokenizer;
use crate::verify::{Subject, Verdict, Verifiers, redact_findings};

pub use lifecycle::Readiness;
pub use streaming::{HOLD_BYTES, StreamEnd, StreamingCompletion};

/// The policy-enforcement kernel: plugins, policy, sandbox and audit trail.
#[derive(Debug)]
pub struct Kernel {
    registry: Registry,
    /// The active bundle; swapped whole on reload, so a call sees one bundle.
    policy: RwLock<Arc<PolicyBundle>>,
    /// The candidate bundle of shadow mode, if configured.
    shadow: RwLock<Option<Arc<PolicyBundle>>>,
    /// The active bundle's hash, announced on every reload that changed it.
    policy_changes: tokio::sync::watch::Sender<String>,
    policy_settings: PolicySettings,
    store_policy_input: bool,
    context: CallContext,
    audit: AuditLog,
    sandbox: Sandbox,
    principals: Principals,
    verifiers: Verifiers,
    contracts: Contracts,
    /// Per-tenant keys for completions' digests and kept text.
    tenant_keys: crate::audit::TenantKeys,
    /// What serves each model, by name (streams open here).
    model_backends: std::collections::BTreeMap<String, Arc<crate::gateway::ModelBackend>>,
    /// Budgets, reservations and spend.
    ledger: crate::budget::Ledger,
    /// What a call of a tool costs (`[tool_prices]`).
    tool_prices: crate::budget::ToolPrices,
    /// Completions of deterministic requests, per tenant, when configured.
    response_cache: Option<crate::gateway::cache::ResponseCache>,
    /// Each model's cooldown and measured latency, on this host.
    health: fallback::Health,
    /// Calls between admission and record.
    in_flight: Arc<lifecycle::InFlight>,
    /// What `/metrics` serves.
    metrics: Metrics,
}

/// What a request asks to call: a tool, or a model for chat or embeddings.
#[derive(Debug, Clone, Copy)]
enum Asked {
    Tool,
    Model(ModelKind),
}

/// One request to call a tool.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// Who is calling.
    pub principal: Arc<Principal>,
    /// Qualified tool name, `plugin.tool`.
    pub tool: String,
    /// Arguments.
    pub args: Value,
    /// Session or trace id, if the caller has one.
    pub session: Option<String>,
    /// The output contract the caller declared, checked
    /// ([`crate::contract::checked`]), for the verifiers to check the output against.
    pub contract: Option<Arc<str>>,
    /// The caller's trace context, passed on to upstream MCP servers.
    pub trace: Option<crate::trace::TraceParent>,
}

/// The answer to a call: its id (the audit record's `call_id`) and its result.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// Id of the call and of its audit record.
    pub call_id: String,
    /// The tool's output, or why there is none.
    pub result: std::result::Result<Value, CallError>,
    /// The shape of the output, as the tool's backend gives it.
    pub form: OutputForm,
}

/// What the pipeline learned, for the audit record, whatever the outcome.
#[derive(Default)]
struct Trail {
    plugin: Option<String>,
    plugin_sha256: Option<String>,
    upstream: Option<String>,
    form: OutputForm,
    decision: &'static str,
    reasons: Vec<String>,
    /// Each decision point's own verdict, in the order they ran.
    decisions: Vec<StageDecision>,
    shadow: Option<String>,
    policy_input: Option<String>,
    /// What the sandbox refused the call, even if the plugin went on.
    refusals: Vec<String>,
    /// Every verifier's verdict, input then output.
    verdicts: Vec<VerdictRecord>,
    /// The model a completion was for (its usage and cost are recorded).
    model: Option<Arc<ToolEntry>>,
    /// For a streamed completion, the bytes of text released to the caller.
    released: Option<u64>,
    /// For a streamed completion, when its first chunk was released.
    first_release: Option<std::time::Duration>,
    /// A request for a model: its digests are keyed per tenant.
    keyed: bool,
    /// Policy obliged keeping the completion's text, sealed.
    keep_text: bool,
    /// For a stopped stream, the text released before it stopped.
    released_text: Option<String>,
    /// What the completion reserved against its budgets, until it settles.
    reservation: Option<crate::budget::Reservation>,
    /// The usage the provider reported, once its answer was read.
    usage: Option<crate::sandbox::chat::Usage>,
    /// Whether the backend was asked to run (a completion was sent).
    dispatched: bool,
    /// Whether anything of a streamed answer arrived.
    received: bool,
    /// The response cache's part: `hit` (answered from it) or `stored`.
    cache: Option<&'static str>,
    /// Where a completion that missed the cache is kept.
    cache_key: Option<String>,
    /// That completion, as the provider answered it, until it is kept.
    cache_output: Option<String>,
    /// Models that did not serve the completion before the one that did.
    hops: Vec<crate::gateway::Hop>,
}

impl Trail {
    /// Notes what serves the call.
    fn resolved(&mut self, tool: &Arc<ToolEntry>) {
        if tool.kind == TargetKind::Model {
            self.model = Some(tool.clone());
        }
        let provider = tool.backend.provider();
        self.plugin = Some(provider.name.clone());
        self.plugin_sha256 = provider.sha256.clone();
        self.upstream = provider.upstream_json.clone();
        self.form = tool.backend.output_form();
    }

    /// Records one decision point's verdict and passes on the call's fate.
    /// The call's `decision` is `deny` once any stage denied or failed.
    fn decided(
        &mut self,
        (stage, fate): (StageDecision, std::result::Result<Decision, CallError>),
    ) -> std::result::Result<Decision, CallError> {
        self.decision = if fate.is_ok() { "allow" } else { "deny" };
        // Each stage's reasons are bounded already; only their count may grow.
        self.reasons.extend(stage.reasons.iter().cloned());
        bound_reason_count(&mut self.reasons);
        self.decisions.push(stage);
        fate
    }
}

/// A call between its request and its record.
struct OpenCall {
    request: CallRequest,
    call_id: String,
    started: Instant,
    /// The bundle that decides every stage of this call, even across a reload.
    policy: Arc<PolicyBundle>,
    trail: Trail,
    /// Counts the call as in flight until it is dropped, after its record.
    _in_flight: lifecycle::InFlightCall,
    /// Every log line while the call runs carries its id.
    span: tracing::Span,
}

impl OpenCall {
    fn new(
        request: CallRequest,
        policy: Arc<PolicyBundle>,
        in_flight: lifecycle::InFlightCall,
    ) -> OpenCall {
        let call_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!("call", call_id = %call_id);
        crate::telemetry::adopt(&span, request.trace.as_ref());
        OpenCall {
            _in_flight: in_flight,
            span,
            request,
            call_id,
            started: Instant::now(),
            policy,
            trail: Trail {
                decision: "none",
                ..Trail::default()
            },
        }
    }
}

/// What the before-run half established about a call that may run.
struct Admission {
    tool: Arc<ToolEntry>,
    /// The arguments the tool runs with when policy had findings redacted
    /// from them; otherwise it runs with the caller's.
    redacted_args: Option<Value>,
    /// The input the call decision saw; the output decision reuses it.
    input: PolicyInput,
    decision: Decision,
    /// The tool's capabilities, narrowed by the decision's limits.
    capabilities: Effective,
    /// A completion the response cache answers with, instead of the backend.
    cached: Option<String>,
}

/// A call the before-run half admitted: resolved, allowed, valid, its intent
/// recorded. It stays open until [`Kernel::finish`] records it.
pub struct Admitted {
    call: OpenCall,
    admission: Admission,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("call_id", &self.call.call_id)
            .field("tool", &self.admission.tool.name)
            .finish_non_exhaustive()
    }
}

impl Admitted {
    /// The call's id (its audit record's `call_id`).
    pub fn call_id(&self) -> &str {
        &self.call.call_id
    }
}

impl Kernel {
    /// Builds the kernel from a config: sandbox engine, policy bundle, audit
    /// store (migrated) and every plugin. Any failure names what to fix.
    pub async fn start(config: &Config) -> Result<Kernel> {
        let sandbox = Sandbox::new(config)?;
        if let Some(dir) = &config.cache_dir {
            prepare_cache_dir(dir)?;
        }
        let policy = PolicyBundle::load(&config.policy.dir, &config.policy.load)?;
        let shadow = match &config.policy.shadow_dir {
            Some(dir) => Some(Arc::new(PolicyBundle::load(dir, &config.policy.load)?)),
            None => None,
        };
        let mut registry = Registry::load(config, &sandbox).await?;
        let models = crate::gateway::load(config, &sandbox).await?;
        registry.add_models(models.values().map(|m| m.entry.clone()));
        let model_backends = models
            .into_iter()
            .map(|(name, model)| (name, model.backend))
            .collect();
        let verifiers = Verifiers::load(config, &sandbox).await?;
        let audit = AuditLog::open(&config.audit_url, &config.audit).await?;
        // The ledger's own connections commit without waiting for their log
        // flush: a reservation holds its budget's row lock until it commits,
        // and a flush under that lock would make every reservation of a
        // shared budget wait for the one before (about 1,000/s here). An
        // answer still waits for its audit record's flush, which (the log
        // being written in order) makes every ledger change before it durable.
        let ledger_store = crate::audit::AuditStore::connect(
            &config.audit_url,
            config.audit.commit_timeout,
            crate::audit::Durability::Commit,
        )
        .await?;
        // Sessions kept in the database share the ledger's connections.
        let context = CallContext::new(config.sessions.clone(), &ledger_store)?;
        let ledger = crate::budget::Ledger::new(ledger_store, config.budgets.clone());
        ledger.spawn_reclaimer();
        // The models' encodings load off the async workers now, not at
        // their first completion.
        let tokenizers: std::collections::BTreeSet<_> =
            config.models.values().map(|m| m.tokenizer).collect();
        tokio::task::spawn_blocking(move || tokenizers.into_iter().for_each(Tokenizer::load));
        let tenant_keys = crate::audit::TenantKeys::new(audit.store().clone());
        let response_cache = config.response_cache.clone().map(|settings| {
            crate::gateway::cache::ResponseCache::new(
                audit.store().clone(),
                tenant_keys.clone(),
                settings,
            )
        });
        Ok(Kernel {
            registry,
            policy_changes: tokio::sync::watch::Sender::new(policy.hash().to_string()),
            policy: RwLock::new(Arc::new(policy)),
            shadow: RwLock::new(shadow),
            policy_settings: config.policy.clone(),
            store_policy_input: config.audit_store_policy_input,
            context,
            sandbox,
            principals: Principals::new(&config.principals),
            verifiers,
            contracts: config.contracts.clone(),
            tenant_keys,
            model_backends,
            ledger,
            tool_prices: config.tool_prices.clone(),
            response_cache,
            health: fallback::Health::default(),
            in_flight: Arc::default(),
            metrics: Metrics::new(audit.metrics()),
            audit,
        })
    }

    /// The configured verifiers.
    pub fn verifiers(&self) -> &Verifiers {
        &self.verifiers
    }

    /// Loaded tools and plugins.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Known principals.
    pub fn principals(&self) -> &Principals {
        &self.principals
    }

    /// The sandbox every plugin call runs in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Sessions, sticky labels and usage counters: faces open sessions here.
    pub fn sessions(&self) -> &CallContext {
        &self.context
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The spend ledger.
    pub fn ledger(&self) -> &crate::budget::Ledger {
        &self.ledger
    }

    /// The active policy bundle.
    pub fn policy(&self) -> Arc<PolicyBundle> {
        match self.policy.read() {
            Ok(policy) => policy.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The shadow bundle, if shadow mode is on.
    pub fn shadow_policy(&self) -> Option<Arc<PolicyBundle>> {
        match self.shadow.read() {
            Ok(shadow) => shadow.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the active policy bundle if its files changed. A bundle that
    /// fails to verify, parse, compile or pass its own tests is refused and
    /// the active one stays: `Err` says why. `Ok(Some(hash))` when a new
    /// bundle took effect. The shadow bundle reloads on its own
    /// ([`Kernel::reload_shadow`]), so a broken candidate never holds back
    /// the active bundle.
    pub fn reload_policy(&self) -> Result<Option<String>> {
        let Some(bundle) = self.changed_bundle(&self.policy_settings.dir, Some(&self.policy()))?
        else {
            return Ok(None);
        };
        let hash = bundle.hash().to_string();
        match self.policy.write() {
            Ok(mut policy) => *policy = bundle,
            Err(poisoned) => *poisoned.into_inner() = bundle,
        }
        self.policy_changes.send_replace(hash.clone());
        Ok(Some(hash))
    }

    /// Watches the active bundle: the receiver sees each reload that took
    /// effect (the new bundle's hash), so a face can tell its clients that
    /// what they may call may have changed.
    pub fn policy_changes(&self) -> tokio::sync::watch::Receiver<String> {
        self.policy_changes.subscribe()
    }

    /// Reloads the shadow bundle, if shadow mode is on and its files changed;
    /// like [`Kernel::reload_policy`], a refused bundle leaves the previous
    /// one in place.
    pub fn reload_shadow(&self) -> Result<Option<String>> {
        let Some(dir) = &self.policy_settings.shadow_dir else {
            return Ok(None);
        };
        let Some(bundle) = self.changed_bundle(dir, self.shadow_policy().as_deref())? else {
            return Ok(None);
        };
        let hash = bundle.hash().to_string();
        match self.shadow.write() {
            Ok(mut shadow) => *shadow = Some(bundle),
            Err(poisoned) => *poisoned.into_inner() = Some(bundle),
        }
        Ok(Some(hash))
    }

    /// The bundle in `dir` if it differs from `current` and loads.
    fn changed_bundle(
        &self,
        dir: &std::path::Path,
        current: Option<&PolicyBundle>,
    ) -> Result<Option<Arc<PolicyBundle>>> {
        let files = BundleFiles::read(dir)?;
        if current.is_some_and(|c| c.hash() == files.hash()) {
            return Ok(None);
        }
        Ok(Some(Arc::new(PolicyBundle::load(
            dir,
            &self.policy_settings.load,
        )?)))
    }

    /// Checks the bundle for changes every `policy.reload_interval_ms` for as
    /// long as the kernel lives.
    pub fn watch_policy(self: &Arc<Self>) {
        let Some(interval) = self.policy_settings.reload_interval else {
            return;
        };
        let kernel = Arc::downgrade(self);
        tokio::spawn(async move {
            let (mut active_error, mut shadow_error) = (String::new(), String::new());
            loop {
                tokio::time::sleep(interval).await;
                let Some(kernel) = kernel.upgrade() else {
                    return;
                };
                let active = kernel.reload_policy();
                kernel
                    .metrics
                    .policy_reload("policy", reload_result(&active));
                log_reload("policy", active, &mut active_error);
                if kernel.policy_settings.shadow_dir.is_some() {
                    let shadow = kernel.reload_shadow();
                    kernel
                        .metrics
                        .policy_reload("shadow", reload_result(&shadow));
                    log_reload("shadow", shadow, &mut shadow_error);
                }
            }
        });
    }

    /// The tools `principal` may see, in name order: those policy could allow
    /// it to call ([`Kernel::could_allow`]). Every face lists these: MCP
    /// `tools/list`, `GET /v1/tools` and `warden tools --as`.
    pub fn visible_tools<'a>(
        &'a self,
        principal: &'a Arc<Principal>,
    ) -> impl Iterator<Item = &'a Arc<ToolEntry>> + 'a {
        self.registry
            .tools()
            .filter(move |tool| self.could_allow(principal, tool))
    }

    /// The models `principal` may see, in name order: those policy could
    /// allow it to use (`GET /v1/models`).
    pub fn visible_models<'a>(
        &'a self,
        principal: &'a Arc<Principal>,
    ) -> impl Iterator<Item = &'a Arc<ToolEntry>> + 'a {
        self.registry
            .models()
            .filter(move |model| self.could_allow(principal, model))
    }

    /// Whether policy allows `principal` to call `tool` with empty arguments.
    /// Rules on argument values cannot be judged here; every real call is
    /// decided in full.
    fn could_allow(&self, principal: &Arc<Principal>, tool: &ToolEntry) -> bool {
        let request = CallRequest {
            principal: principal.clone(),
            tool: tool.name.clone(),
            args: json!({}),
            session: None,
            contract: None,
            trace: None,
        };
        let context = CallLabels::default();
        let input = policy_input(&request, tool, context, &[], &[]);
        self.policy()
            .decide(Stage::Call, &input)
            .is_ok_and(|decision| decision.allow)
    }

    /// Runs one call through the whole pipeline and records it: the
    /// before-run half ([`Kernel::admit`]), the backend ([`Kernel::run`]) and
    /// the after-run half ([`Kernel::finish`]).
    pub async fn call(&self, request: CallRequest) -> CallResponse {
        self.call_target(request, Asked::Tool).await
    }

    /// Runs one completion through the whole pipeline and records it, as
    /// [`Kernel::call`] runs a tool call: `request.tool` names the model,
    /// `request.args` is the chat request (OpenAI's format), and the output
    /// is the completion.
    pub async fn complete(&self, request: CallRequest) -> CallResponse {
        self.call_target(request, Asked::Model(ModelKind::Chat))
            .await
    }

    /// Runs one embeddings request through the whole pipeline and records
    /// it: `request.tool` names an embeddings model, `request.args` is the
    /// request (OpenAI's format), and the output the vectors.
    pub async fn embed(&self, request: CallRequest) -> CallResponse {
        self.call_target(request, Asked::Model(ModelKind::Embeddings))
            .await
    }

    async fn call_target(&self, request: CallRequest, kind: Asked) -> CallResponse {
        match self.admit_target(request, kind).await {
            Ok(mut admitted) => {
                let ran = self.run(&mut admitted).await;
                self.finish(admitted, ran).await
            }
            Err(refused) => refused,
        }
    }

    /// The before-run half: resolve the tool, decide the call, validate its
    /// arguments, and commit the intent record of a side-effecting tool. A
    /// call refused here is recorded and its response returned as `Err`; an
    /// admitted call is open until [`Kernel::finish`] records it, so a
    /// streaming face can hold it while the backend runs.
    pub async fn admit(&self, request: CallRequest) -> std::result::Result<Admitted, CallResponse> {
        self.admit_target(request, Asked::Tool).await
    }

    async fn admit_target(
        &self,
        request: CallRequest,
        kind: Asked,
    ) -> std::result::Result<Admitted, CallResponse> {
        let mut call = OpenCall::new(request, self.policy(), self.in_flight.enter());
        call.trail.keyed = matches!(kind, Asked::Model(_));
        let span = call.span.clone();
        async move {
            match self.before_run(&mut call, kind).await {
                Ok(admission) => Ok(Admitted { call, admission }),
                Err(error) => Err(self.conclude(call, Err(error)).await),
            }
        }
        .instrument(span)
        .await
    }

    /// Runs an admitted call's backend within its provider's concurrency
    /// limit, retrying `tool-transient` failures as often as policy allows.
    /// Returns the output as the backend gave it.
    pub async fn run(&self, admitted: &mut Admitted) -> std::result::Result<String, CallError> {
        let span = admitted.call.span.clone();
        async move {
            let Admitted { call, admission } = admitted;
            if let Some(output) = admission.cached.take() {
                return Ok(output);
            }
            call.trail.dispatched = true;
            if admission.tool.kind == TargetKind::Model {
                return self.run_model(call, admission).await;
            }
            self.invoke(
                &admission.tool,
                &admission.capabilities,
                &call.request,
                admission
                    .redacted_args
                    .as_ref()
                    .unwrap_or(&call.request.args),
                admission.decision.obligations.retries,
                &mut call.trail.refusals,
            )
            .await
        }
        .instrument(span)
        .await
    }

    /// Runs a completion on its model, or on the fallbacks the plan leaves
    /// when it is rate limited, unavailable or too slow; the model that
    /// answers becomes the call's.
    async fn run_model(
        &self,
        call: &mut OpenCall,
        admission: &mut Admission,
    ) -> std::result::Result<String, CallError> {
        let plan = self.plan(call, &admission.tool);
        let args = admission
            .redacted_args
            .clone()
            .unwrap_or_else(|| call.request.args.clone());
        let mut outcome = Err(CallError::new(
            ErrorCode::ProviderUnavailable,
            format!(
                "every model that may serve `{}` is cooling down",
                admission.tool.name
            ),
        ));
        for (i, model) in plan.iter().enumerate() {
            let capabilities =
                narrowed(model.capabilities(), &admission.decision.obligations.limits).into_owned();
            let started = std::time::Instant::now();
            let ran = self
                .invoke(
                    model,
                    &capabilities,
                    &call.request,
                    &args,
                    admission.decision.obligations.retries,
                    &mut call.trail.refusals,
                )
                .await;
            if let Err(error) = &ran
                && self.falls_back(call, &plan, model, error, i + 1 < plan.len())
            {
                outcome = ran;
                continue;
            }
            if ran.is_ok() {
                self.health.answered(&model.name, started.elapsed());
            }
            if model.name != admission.tool.name {
                call.trail.resolved(model);
                admission.tool = model.clone();
                admission.capabilities = capabilities;
            }
            return ran;
        }
        outcome
    }

    /// The after-run half: mark the session with what the tool read, check
    /// the output, decide on it, apply redactions and commit the record.
    pub async fn finish(
        &self,
        admitted: Admitted,
        ran: std::result::Result<String, CallError>,
    ) -> CallResponse {
        let span = admitted.call.span.clone();
        async move {
            let Admitted {
                mut call,
                admission,
            } = admitted;
            let result = self.after_run(&mut call, &admission, ran).await;
            self.conclude(call, result).await
        }
        .instrument(span)
        .await
    }

    /// Resolve → context → (validate → verify, when a verifier examines
    /// the arguments) → decide → (validate, otherwise) → redact findings →
    /// approval → intent.
    async fn before_run(
        &self,
        call: &mut OpenCall,
        kind: Asked,
    ) -> std::result::Result<Admission, CallError> {
        let tool = self.resolve(&call.request.tool, kind)?;
        call.trail.resolved(&tool);
        let request = &call.request;
        let timer = self.metrics.time(MetricStage::Context);
        let context = self
            .context
            .begin_call(&request.principal, request.session.as_deref())
            .await?;
        drop(timer);
        // Verdicts are inputs to the decision, so a call whose arguments a
        // verifier examines is validated and verified first. Any other call
        // is decided first: a principal whom policy denies the tool costs no
        // validation.
        let verifying = self.verifiers.any_applies(VerifierStage::Input, &tool.name);
        let verdicts = if verifying {
            validate(&tool, &request.args).await?;
            let contracts = self.contracts.on_input(&tool.name);
            let sources = self
                .sources_for(VerifierStage::Input, &tool.name, request)
                .await?;
            let subject = Subject {
                stage: VerifierStage::Input,
                target: &tool.name,
                content: &request.args,
                tenant: &request.principal.tenant,
                session_labels: &context.session,
                contracts: &contracts,
                sources: &sources,
            };
            self.verify(subject, &mut call.trail).await
        } else {
            Vec::new()
        };
        let budgets = self.budgets_for(call, &tool).await?;
        let (input, decision) = self.decide_call(call, &tool, context, &verdicts, &budgets)?;
        if !verifying {
            validate(&tool, &call.request.args).await?;
        }
        let mut redacted_args = None;
        if !decision.obligations.redact_findings.is_empty() {
            let mut args = call.request.args.clone();
            redact_findings(&mut args, &verdicts, &decision.obligations.redact_findings);
            // What policy redacted must still be arguments the tool accepts.
            validate(&tool, &args).await?;
            redacted_args = Some(args);
        }
        if let Some(reason) = &decision.obligations.require_approval {
            return Err(CallError {
                reasons: vec![reason.clone()],
                ..CallError::new(
                    ErrorCode::PendingApproval,
                    format!("`{}` needs approval before it can run", tool.name),
                )
            });
        }
        let (tool, redacted_args) = match &decision.obligations.completion {
            Some(obligations) if tool.kind == TargetKind::Model => {
                let args = redacted_args.unwrap_or_else(|| call.request.args.clone());
                let (served, args) = self.oblige_completion(&tool, obligations, args)?;
                call.trail.resolved(&served);
                call.trail.keep_text = obligations.keep_text;
                (served, Some(args))
            }
            _ => (tool, redacted_args),
        };
        let cached = if tool.kind == TargetKind::Model {
            self.look_up(call, &tool, redacted_args.as_ref()).await
        } else {
            None
        };
        // A cached answer costs nothing: nothing is reserved for it.
        let redacted_args = if cached.is_none() {
            self.reserve(call, &tool, redacted_args, decision.obligations.retries)
                .await?
        } else {
            redacted_args
        };
        if tool.side_effects {
            self.record_intent(call, &tool).await?;
        }
        let capabilities = narrowed(tool.capabilities(), &decision.obligations.limits).into_owned();
        Ok(Admission {
            tool,
            redacted_args,
            input,
            decision,
            capabilities,
            cached,
        })
    }

    /// What policy obliged of a completion: the model that serves it
    /// (`route_to`, a configured model) and the request it is sent, with
    /// `max_tokens` capped and the tools stripped when asked.
    fn oblige_completion(
        &self,
        asked: &Arc<ToolEntry>,
        obligations: &crate::policy::CompletionObligations,
        mut args: Value,
    ) -> std::result::Result<(Arc<ToolEntry>, Value), CallError> {
        let served = match &obligations.route_to {
            Some(name) => self.registry.model(name).cloned().ok_or_else(|| {
                CallError::new(
                    ErrorCode::PolicyError,
                    format!(
                        "policy routes `{}` to `{}`, which is not a configured model",
                        asked.name,
                        bounded(name, NAME_SHOWN_MAX)
                    ),
                )
            })?,
            None => asked.clone(),
        };
        if let Some(object) = args.as_object_mut() {
            if let Some(cap) = obligations.max_tokens {
                for key in ["max_tokens", "max_completion_tokens"] {
                    let asked = object.get(key).and_then(Value::as_u64);
                    if asked.is_some_and(|n| n > u64::from(cap)) || key == "max_tokens" {
                        let value = asked.map_or(u64::from(cap), |n| n.min(u64::from(cap)));
                        object.insert(key.to_string(), json!(value));
                    }
                }
            }
            if obligations.strip_tools {
                for key in ["tools", "tool_choice", "parallel_tool_calls"] {
                    object.remove(key);
                }
            }
        }
        Ok((served, args))
    }

    /// Check → verify → decide output → labels → redactions.
    async fn after_run(
        &self,
        call: &mut OpenCall,
        admission: &Admission,
        ran: std::result::Result<String, CallError>,
    ) -> std::result::Result<Value, CallError> {
        let Admission {
            tool,
            input,
            decision,
            capabilities,
            ..
        } = admission;
        // The tool ran, or tried to: whatever it read now marks the session.
        let (principal, session) = (&call.request.principal, call.request.session.as_deref());
        self.context
            .add_labels(principal, session, &tool.labels)
            .await?;
        self.context
            .add_labels(principal, session, &decision.obligations.labels)
            .await?;
        let mut output = check_output(tool, capabilities, &ran?).await?;
        if tool.kind == TargetKind::Model {
            call.trail.usage = spend::reported_usage(&output);
            if call.trail.cache_key.is_some() {
                call.trail.cache_output = Some(output.to_string());
            }
        }
        let verdicts = if self
            .verifiers
            .any_applies(VerifierStage::Output, &tool.name)
        {
            let session_labels = self.context.session_labels(principal, session).await?;
            let contracts = self
                .contracts
                .on_output(&tool.name, call.request.contract.as_ref());
            let sources = self
                .sources_for(VerifierStage::Output, &tool.name, &call.request)
                .await?;
            let subject = Subject {
                stage: VerifierStage::Output,
                target: &tool.name,
                content: &output,
                tenant: &principal.tenant,
                session_labels: &session_labels,
                contracts: &contracts,
                sources: &sources,
            };
            self.verify(subject, &mut call.trail).await
        } else {
            Vec::new()
        };

        // A bundle without an output decision allows every output; then
        // there is no output stage to record. Verdicts on an output need a
        // decision to act on them: without one, the output is refused.
        let mut redactions = decision.obligations.redact.clone();
        if call.policy.has_output_decision() || !verdicts.is_empty() {
            let verdict = if call.policy.has_output_decision() {
                let _timer = self.metrics.time(MetricStage::Decide);
                call.policy.decide_output(
                    input,
                    &output,
                    &input::verdicts(verdicts.iter().map(|v| &v.record)),
                )
            } else {
                Err(
                    "verifiers examined the output, but the policy bundle has no \
                     `output_decision` to act on their verdicts"
                        .to_string(),
                )
            };
            let after = call
                .trail
                .decided(judge(verdict, Stage::Output, tool, principal))?;
            self.context
                .add_labels(principal, session, &after.obligations.labels)
                .await?;
            redactions.extend(after.obligations.redact);
            redact_findings(&mut output, &verdicts, &after.obligations.redact_findings);
        }

        let mut response = json!({ "output": output });
        for pointer in &redactions {
            redact(&mut response, pointer);
        }
        let output = response["output"].take();
        if self.verifiers.any_sees_sources() {
            let text = output.to_string();
            let source = Source {
                id: call.call_id.clone(),
                target: tool.name.clone(),
                // The arguments the tool ran on: a locator policy redacted
                // stays redacted.
                locator: locator(
                    admission
                        .redacted_args
                        .as_ref()
                        .unwrap_or(&call.request.args),
                ),
                digest: sha256_hex(text.as_bytes()),
                content: Some(text.into()),
            };
            self.context.add_source(principal, session, source).await?;
        }
        Ok(output)
    }

    /// The session's earlier outputs, when a verifier that sees them
    /// examines `stage` of `target`.
    async fn sources_for(
        &self,
        stage: VerifierStage,
        target: &str,
        request: &CallRequest,
    ) -> std::result::Result<Vec<Source>, CallError> {
        if !self.verifiers.sources_needed(stage, target) {
            return Ok(Vec::new());
        }
        self.context
            .sources(&request.principal, request.session.as_deref())
            .await
    }

    /// Verify: the verdicts of the verifiers that examine `subject`, each
    /// also noted in the call's trail.
    async fn verify(&self, subject: Subject<'_>, trail: &mut Trail) -> Vec<Verdict> {
        let timer = self.metrics.time(MetricStage::Verify);
        let verdicts = self.verifiers.verify(&subject).await;
        drop(timer);
        trail
            .verdicts
            .extend(verdicts.iter().map(|v| v.record.clone()));
        verdicts
    }

    /// Resolve: the tool, or the model, named by the request; a model
    /// must do what was asked of it (chat or embeddings).
    fn resolve(&self, name: &str, asked: Asked) -> std::result::Result<Arc<ToolEntry>, CallError> {
        let (found, code, what) = match asked {
            Asked::Tool => (self.registry.tool(name), ErrorCode::UnknownTool, "tool"),
            Asked::Model(_) => (self.registry.model(name), ErrorCode::UnknownModel, "model"),
        };
        let found = found.cloned().ok_or_else(|| {
            CallError::new(
                code,
                format!("no {what} named `{}`", bounded(name, NAME_SHOWN_MAX)),
            )
        })?;
        if let (Asked::Model(kind), Some(model)) = (asked, &found.model)
            && model.kind != kind
        {
            return Err(CallError::new(
                ErrorCode::UnsupportedRequest,
                format!(
                    "`{}` is a {} model; this request asks for {}",
                    found.name,
                    model.kind.name(),
                    kind.name()
                ),
            ));
        }
        Ok(found)
    }

    /// Decide, on the input verifiers' verdicts when there are any.
    /// Returns the input the decision saw (the output decision reuses it)
    /// and the decision.
    fn decide_call(
        &self,
        call: &mut OpenCall,
        tool: &ToolEntry,
        context: CallLabels,
        verdicts: &[Verdict],
        budgets: &[crate::budget::BudgetStatus],
    ) -> std::result::Result<(PolicyInput, Decision), CallError> {
        let _timer = self.metrics.time(MetricStage::Decide);
        let request = &call.request;
        let input = policy_input(request, tool, context, verdicts, budgets);
        let verdict = call.policy.decide(Stage::Call, &input);
        if let Some(shadow) = self.shadow_policy() {
            call.trail.shadow = disagreement(&shadow, &input, &verdict);
        }
        if self.store_policy_input {
            let mut stored = input.to_json();
            // Whatever a verifier found is never stored, whatever policy decided.
            if let Some(args) = stored.get_mut("args") {
                redact_findings(args, verdicts, &["*".to_string()]);
                // A prompt is kept only sealed, where policy obliges it.
                if tool.kind == TargetKind::Model {
                    *args = json!("[a prompt is kept only sealed, under `keep_text`]");
                }
            }
            if let Ok(decision) = &verdict {
                for pointer in &decision.obligations.redact {
                    redact(&mut stored, pointer);
                }
            }
            call.trail.policy_input = Some(stored.to_string());
        }
        let decision = call
            .trail
            .decided(judge(verdict, Stage::Call, tool, &request.principal))?;
        Ok((input, decision))
    }

    /// A side-effecting call leaves a committed intent record before it
    /// runs, so a crash mid-call shows as an incomplete call, not silence.
    async fn record_intent(
        &self,
        call: &OpenCall,
        tool: &ToolEntry,
    ) -> std::result::Result<(), CallError> {
        let intent = AuditRecord {
            intent: true,
            ..record(
                &call.request,
                &call.call_id,
                &call.policy,
                &call.trail,
                None,
                0,
            )
        };
        let _timer = self.metrics.time(MetricStage::Record);
        self.audit.append(intent).await.map_err(|e| {
            CallError::new(
                ErrorCode::AuditUnavailable,
                format!(
                    "the intent record could not be committed, so `{}` did not run: {e}",
                    tool.name
                ),
            )
        })
    }

    /// Record: commits the call's audit record and answers. Nothing is
    /// returned that the trail does not hold: if the record cannot be
    /// committed, the answer is `audit-unavailable`.
    async fn conclude(
        &self,
        mut call: OpenCall,
        result: std::result::Result<Value, CallError>,
    ) -> CallResponse {
        let result = result.map_err(bounded_error);
        // The ledger takes the charge before the record: an answer the
        // ledger could not charge is not given.
        let (spend, result) = match self.settle(&call, &result).await {
            Ok(spend) => (spend, result),
            Err(error) => (None, Err(bounded_error(error))),
        };
        if result.is_ok() {
            self.keep(&mut call).await;
        }
        let duration_us = i64::try_from(call.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let mut record = record(
            &call.request,
            &call.call_id,
            &call.policy,
            &call.trail,
            Some(result.as_ref().map(|_| ())),
            duration_us,
        );
        if let Ok(output) = &result {
            record.output_digest = Some(sha256_hex(canonical_json(output).as_bytes()));
        }
        record.spend = spend.and_then(|spend| serde_json::to_string(&spend).ok());
        if let Some(entry) = &call.trail.model
            && let Some(model) = &entry.model
        {
            // What was released to the caller: the output after redactions.
            let mut completion = CompletionRecord::new(
                &entry.name,
                model,
                result.as_ref().ok(),
                call.trail.released,
            );
            completion.cache = call.trail.cache.map(str::to_string);
            completion.hops = call.trail.hops.clone();
            if call.trail.cache == Some("hit") {
                // Answered from the cache: the provider billed nothing.
                completion.cost_micro_usd = 0;
            }
            completion.first_chunk_us = call
                .trail
                .first_release
                .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX));
            record.completion = serde_json::to_string(&completion).ok();
        }
        let result = if call.trail.keyed {
            match self.key_completion(&call, &mut record, &result).await {
                Ok(()) => result,
                Err(e) => {
                    let error = bounded_error(CallError::new(
                        ErrorCode::AuditUnavailable,
                        format!(
                            "the tenant's audit keys are unavailable, so the call is denied: {e}"
                        ),
                    ));
                    record.outcome = error.code.as_str().to_string();
                    record.error = Some(error.message.clone());
                    Err(error)
                }
            }
        } else {
            result
        };
        let recorded = self.metrics.time(MetricStage::Record);
        let appended = self.audit.append(record).await;
        drop(recorded);
        let result = match appended {
            Ok(()) => result,
            Err(e) => Err(CallError::new(
                ErrorCode::AuditUnavailable,
                format!("the call's audit record could not be committed, so it is denied: {e}"),
            )),
        };
        // Only a target that exists is a label: callers cannot add labels.
        let target = call
            .trail
            .plugin
            .is_some()
            .then_some(call.request.tool.as_str());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        self.metrics
            .call_recorded(target, call.trail.decision, outcome, call.started);
        CallResponse {
            call_id: call.call_id,
            result,
            form: call.trail.form,
        }
    }

    /// A completion's record keyed to its tenant: its digests are HMACs
    /// under the tenant's digest key, and, when policy obliged keeping the
    /// text, the request and what was released are sealed under its text
    /// key. On failure the record keeps no digest at all.
    async fn key_completion(
        &self,
        call: &OpenCall,
        record: &mut AuditRecord,
        result: &std::result::Result<Value, CallError>,
    ) -> std::result::Result<(), String> {
        let tenant = &call.request.principal.tenant;
        let keyed = async {
            let args = canonical_json(&call.request.args);
            record.args_digest = self.tenant_keys.digest(tenant, args.as_bytes()).await?;
            if let Ok(output) = result {
                let output = canonical_json(output);
                record.output_digest =
                    Some(self.tenant_keys.digest(tenant, output.as_bytes()).await?);
            }
            if call.trail.keep_text {
                let released = match (result, &call.trail.released_text) {
                    (Ok(output), _) => json!({ "completion": output }),
                    (Err(_), Some(text)) => json!({ "released": text }),
                    (Err(_), None) => json!({}),
                };
                let mut text = json!({ "request": call.request.args });
                if let (Some(text), Some(released)) = (text.as_object_mut(), released.as_object()) {
                    text.extend(released.clone());
                }
                record.sealed_text = Some(
                    self.tenant_keys
                        .seal(tenant, &call.call_id, &text.to_string())
                        .await?,
                );
            }
            Ok::<(), String>(())
        };
        let outcome = keyed.await;
        if outcome.is_err() {
            record.args_digest = String::new();
            record.output_digest = None;
            record.sealed_text = None;
        }
        outcome
    }

    /// Runs the tool within its provider's concurrency limit, retrying
    /// `tool-transient` failures as often as policy allows: in a fresh
    /// sandbox for a plugin, forwarded for an upstream.
    async fn invoke(
        &self,
        tool: &ToolEntry,
        capabilities: &Effective,
        request: &CallRequest,
        args: &Value,
        retries: u8,
        refusals: &mut Vec<String>,
    ) -> std::result::Result<String, CallError> {
        let busy = || {
            CallError::new(
                ErrorCode::PluginBusy,
                format!(
                    "`{}` is running its maximum of {} concurrent calls",
                    tool.provider(),
                    capabilities.max_concurrent
                ),
            )
        };
        let timer = self.metrics.time(MetricStage::Run);
        let trace = crate::telemetry::outgoing(timer.span(), request.trace.as_ref());
        let _slot = tokio::time::timeout(capabilities.time_limit, tool.slots().acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let call = Invocation {
            tool: &tool.local_name,
            args,
            capabilities,
            principal: &request.principal,
            store: self.audit.store(),
            trace: trace.as_ref(),
        };
        let mut attempt = 0;
        loop {
            let ran = tool.backend.invoke(call).await;
            refusals.extend(ran.refusals);
            match ran.output {
                Err(e)
                    if e.code == ErrorCode::ToolTransient && attempt < retries.min(MAX_RETRIES) =>
                {
                    attempt += 1;
                    let wait = u64::from(e.retry_after_ms.unwrap_or(50)).min(1000);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                other => return other,
            }
        }
    }
}

/// Creates the cache directory private to this user, and refuses one that
/// others can write to: precompiled components there are native code.
fn prepare_cache_dir(dir: &std::path::Path) -> Result<()> {
    let fail = |message: String| {
        crate::error::Error::Sandbox(format!("cache {}: {message}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // Group- or world-writable is never acceptable; fix it or refuse.
        let metadata = std::fs::metadata(dir).map_err(|e| fail(e.to_string()))?;
        if metadata.mode() & 0o022 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                fail(format!(
                    "is writable by others and cannot be made private: {e}"
                ))
            })?;
        }
    }
    Ok(())
}

/// The audit record of a call in its current state; `result` is `None` while
/// the call is still running (its intent record).
fn record(
    request: &CallRequest,
    call_id: &str,
    policy: &PolicyBundle,
    trail: &Trail,
    result: Option<std::result::Result<(), &CallError>>,
    duration_us: i64,
) -> AuditRecord {
    let (outcome, error) = match result {
        None => ("pending".to_string(), None),
        Some(Ok(())) => ("ok".to_string(), None),
        Some(Err(e)) => (e.code.as_str().to_string(), Some(e.message.clone())),
    };
    // The session id and tool name are the caller's words: an invalid session
    // is stored as its digest, a tool name that resolved nothing is cut.
    let session = request
        .session
        .as_deref()
        .map(|id| match check_session_id(id) {
            Ok(()) => id.to_string(),
            Err(_) => format!("invalid:{}", &sha256_hex(id.as_bytes())[..16]),
        });
    AuditRecord {
        call_id: call_id.to_string(),
        recorded_at: AuditRecord::now(),
        principal: request.principal.id.clone(),
        tenant: request.principal.tenant.clone(),
        session,
        tool: bounded(&request.tool, NAME_SHOWN_MAX).into_owned(),
        plugin: trail.plugin.clone(),
        plugin_sha256: trail.plugin_sha256.clone(),
        upstream: trail.upstream.clone(),
        policy_hash: policy.hash().to_string(),
        decision: trail.decision.to_string(),
        reasons: trail.reasons.clone(),
        decisions: trail.decisions.clone(),
        args_digest: sha256_hex(canonical_json(&request.args).as_bytes()),
        outcome,
        output_digest: None,
        error,
        duration_us,
        intent: false,
        shadow: trail.shadow.clone(),
        policy_input: trail.policy_input.clone(),
        refusals: trail.refusals.clone(),
        verdicts: trail.verdicts.clone(),
        completion: None,
        sealed_text: None,
        spend: None,
    }
}

/// Longest tool name shown in errors and stored in the audit record; real
/// names are far shorter (`manifest::validate_name`).
const NAME_SHOWN_MAX: usize = 256;
/// Longest error message returned or stored; plugins, upstreams and
/// callers all put text into error messages.
const ERROR_MESSAGE_MAX: usize = 4096;
/// Most policy reasons returned or stored, and the longest of each: a
/// policy may quote the caller's arguments in a reason.
const REASONS_MAX: usize = 16;
const REASON_MAX: usize = 8192;

/// `error` with its message and reasons bounded, as it may leave the host
/// and enter the audit trail.
fn bounded_error(mut error: CallError) -> CallError {
    if error.message.len() > ERROR_MESSAGE_MAX {
        error.message = bounded(&error.message, ERROR_MESSAGE_MAX).into_owned();
    }
    bound_reasons(&mut error.reasons);
    error
}

fn bound_reasons(reasons: &mut Vec<String>) {
    bound_reason_count(reasons);
    for reason in reasons.iter_mut() {
        if reason.len() > REASON_MAX {
            *reason = bounded(reason, REASON_MAX).into_owned();
        }
    }
}

/// Keeps at most [`REASONS_MAX`] reasons, the last one saying how many more
/// there were.
fn bound_reason_count(reasons: &mut Vec<String>) {
    if reasons.len() > REASONS_MAX {
        let dropped = reasons.len() - REASONS_MAX + 1;
        reasons.truncate(REASONS_MAX - 1);
        reasons.push(format!("…and {dropped} more reasons"));
    }
}

/// Most retries a policy can ask for.
const MAX_RETRIES: u8 = 5;

/// Logs the outcome of one reload of the `which` bundle; a refusal is logged
/// once until its message changes.
fn reload_result(outcome: &Result<Option<String>>) -> std::result::Result<bool, ()> {
    match outcome {
        Ok(applied) => Ok(applied.is_some()),
        Err(_) => Err(()),
    }
}

fn log_reload(which: &str, outcome: Result<Option<String>>, last_error: &mut String) {
    match outcome {
        Ok(Some(hash)) => {
            last_error.clear();
            tracing::info!(%hash, bundle = which, "policy bundle reloaded");
        }
        Ok(None) => {}
        Err(e) => {
            let message = e.to_string();
            if message != *last_error {
                tracing::error!(bundle = which, error = %message, "policy bundle refused; the previous one stays");
                *last_error = message;
            }
        }
    }
}

/// How the shadow bundle's decision differs from the active one, if it does.
fn disagreement(
    shadow: &PolicyBundle,
    input: &PolicyInput,
    active: &std::result::Result<Decision, String>,
) -> Option<String> {
    let candidate = shadow.decide(Stage::Call, input);
    let summary = |d: &std::result::Result<Decision, String>| match d {
        Ok(d) => (if d.allow { "allow" } else { "deny" }, d.reasons.clone()),
        Err(e) => ("error", vec![e.clone()]),
    };
    let (mine, theirs) = (summary(active), summary(&candidate));
    (mine != theirs).then(|| {
        format!(
            "shadow bundle {} decided {} {:?}",
            &shadow.hash()[..12],
            theirs.0,
            theirs.1
        )
    })
}

/// Validate: the arguments against the tool's input schema, within its time
/// limit and off the async workers.
async fn validate(tool: &ToolEntry, args: &Value) -> std::result::Result<(), CallError> {
    tool.input
        .check_within(args, tool.capabilities().time_limit)
        .await
        .map_err(|m| {
            CallError::new(
                ErrorCode::InvalidArgs,
                format!("arguments for `{}` {m}", tool.name),
            )
        })
}

/// Turns one decision point's verdict into what the record keeps of it and
/// the call's fate: a denial or an evaluation failure is the call's error.
fn judge(
    verdict: std::result::Result<Decision, String>,
    stage: Stage,
    tool: &ToolEntry,
    principal: &Principal,
) -> (StageDecision, std::result::Result<Decision, CallError>) {
    let decision = match verdict {
        Ok(decision) => decision,
        Err(m) => {
            let recorded = StageDecision {
                stage: stage.name().to_string(),
                decision: "error".to_string(),
                reasons: vec![bounded(&m, REASON_MAX).into_owned()],
            };
            let error = CallError::new(
                ErrorCode::PolicyError,
                format!("policy could not decide: {m}"),
            );
            return (recorded, Err(error));
        }
    };
    let mut reasons = decision.reasons.clone();
    bound_reasons(&mut reasons);
    let recorded = StageDecision {
        stage: stage.name().to_string(),
        decision: if decision.allow { "allow" } else { "deny" }.to_string(),
        reasons,
    };
    if decision.allow {
        return (recorded, Ok(decision));
    }
    let reasons = if decision.reasons.is_empty() {
        vec!["no policy rule allows this call".to_string()]
    } else {
        decision.reasons
    };
    let what = match stage {
        Stage::Call => format!("`{}`", tool.name),
        Stage::Output => format!("the output of `{}`", tool.name),
    };
    let error = CallError {
        reasons,
        ..CallError::new(
            ErrorCode::PolicyDenied,
            format!("policy denied {what} for `{}`", principal.id),
        )
    };
    (recorded, Err(error))
}

/// The plugin's capabilities with the limits a policy narrowed for this call;
/// borrowed unchanged (no copy on the hot path) when policy narrowed nothing.
fn narrowed<'a>(capabilities: &'a Effective, limits: &NarrowedLimits) -> Cow<'a, Effective> {
    if *limits == NarrowedLimits::default() {
        return Cow::Borrowed(capabilities);
    }
    let mut narrowed = capabilities.clone();
    if let Some(ms) = limits.time_limit_ms {
        narrowed.time_limit = narrowed
            .time_limit
            .min(std::time::Duration::from_millis(ms));
    }
    if let Some(mb) = limits.memory_mb {
        narrowed.memory_bytes = narrowed.memory_bytes.map(|bytes| bytes.min(mb << 20));
    }
    if let Some(bytes) = limits.output_max_bytes {
        narrowed.output_max_bytes = narrowed.output_max_bytes.min(bytes);
    }
    Cow::Owned(narrowed)
}

/// Size, JSON and schema checks of a tool's output (the schema check within
/// the call's time limit: see [`crate::schema`]).
pub async fn check_output(
    tool: &ToolEntry,
    capabilities: &Effective,
    output: &str,
) -> std::result::Result<Value, CallError> {
    let max = capabilities.output_max_bytes;
    if output.len() > max {
        return Err(CallError::new(
            ErrorCode::OutputTooLarge,
            format!(
                "`{}` returned {} bytes; the limit is {max}",
                tool.name,
                output.len()
            ),
        ));
    }
    let output: Value = serde_json::from_str(output).map_err(|e| {
        CallError::new(
            ErrorCode::InvalidOutput,
            format!("`{}` returned output that is not JSON: {e}", tool.name),
        )
    })?;
    tool.output
        .check_within(&output, capabilities.time_limit)
        .await
        .map_err(|m| {
            CallError::new(
                ErrorCode::InvalidOutput,
                format!("output of `{}` violates its schema {m}", tool.name),
            )
        })?;
    Ok(output)
}

/// Replaces the value at `pointer` (RFC 6901) with `"[redacted]"`, if present.
fn redact(document: &mut Value, pointer: &str) {
    if let Some(value) = document.pointer_mut(pointer) {
        *value = Value::String("[redacted]".into());
    }
}

/// The policy input document, version [`input::VERSION`], of the call
/// stage. Built directly in the evaluator's value type; the parts that never
/// change (principal, target, capabilities) are built once and shared.
pub fn policy_input(
    request: &CallRequest,
    tool: &ToolEntry,
    context: CallLabels,
    verdicts: &[Verdict],
    budgets: &[crate::budget::BudgetStatus],
) -> PolicyInput {
    let now = chrono::Utc::now();
    let [target, capabilities] = tool.policy_parts.get_or_init(|| {
        [
            policy_target(tool).into_input(),
            json_value(&tool.capabilities().summary()),
        ]
    });
    let principal = if context.principal.is_empty() {
        let principal = &request.principal;
        principal
            .policy_document
            .get_or_init(|| principal_part(principal, Vec::new()).into_input())
            .clone()
    } else {
        principal_part(&request.principal, context.principal).into_input()
    };
    let usage = context.usage;
    PolicyInput::new(
        Input {
            version: input::VERSION,
            stage: Stage::Call.name(),
            principal,
            session: SessionPart {
                id: request.session.as_deref().map(str::to_string),
                labels: context.session,
            },
            target: target.clone(),
            args: json_value(&request.args),
            capabilities: capabilities.clone(),
            verdicts: input::verdicts(verdicts.iter().map(|v| &v.record)),
            usage: UsagePart {
                tenant_calls: usage.tenant_calls,
                principal_calls: usage.principal_calls,
            },
            time: TimePart {
                rfc3339: now.to_rfc3339(),
                unix_ns: now.timestamp_nanos_opt(),
            },
            completion: tool
                .model
                .as_ref()
                .map(|model| completion_part(model, &request.args))
                .into_input(),
            budget: budgets.iter().map(budget_part).collect(),
        }
        .into_input(),
    )
}

/// `input.completion`: what the request `args` (chat or embeddings) asks of `model`.
fn completion_part(model: &crate::config::ModelConfig, args: &Value) -> regorus::Value {
    let text_len = |content: Option<&Value>| match content {
        Some(Value::String(text)) => text.len(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.as_str().or_else(|| p.get("text").and_then(Value::as_str)))
            .map(str::len)
            .sum(),
        _ => 0,
    };
    let (messages, prompt_bytes) = match model.kind {
        ModelKind::Chat => {
            let messages = args
                .get("messages")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let bytes = messages.iter().map(|m| text_len(m.get("content"))).sum();
            (messages.len(), bytes)
        }
        ModelKind::Embeddings => {
            let input = args.get("input");
            let count = input
                .and_then(Value::as_array)
                .map_or(usize::from(input.is_some()), Vec::len);
            (count, text_len(input))
        }
    };
    let prompt_bytes = prompt_bytes as u64;
    let tools_offered = args
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    CompletionPart {
        operation: model.kind.name(),
        upstream_model: model.upstream_model.clone(),
        origin: model.origin.as_str().trim_end_matches('/').to_string(),
        context_window: model.context_window,
        messages: messages as u64,
        prompt_bytes,
        prompt_tokens_estimate: prompt_bytes.div_ceil(4),
        tools_offered,
        response_format: args
            .pointer("/response_format/type")
            .and_then(Value::as_str)
            .map(str::to_string),
        max_tokens: args
            .get("max_completion_tokens")
            .or_else(|| args.get("max_tokens"))
            .and_then(Value::as_u64),
        stream: args.get("stream").and_then(Value::as_bool).unwrap_or(false),
    }
    .into_input()
}

/// One budget of `input.budget`.
fn budget_part(status: &crate::budget::BudgetStatus) -> BudgetPart {
    let budget = &status.budget;
    BudgetPart {
        name: budget.name.clone(),
        unit: budget.unit.as_str(),
        period: budget.period.as_str(),
        limit: budget.limit,
        spent: status.spent,
        reserved: status.reserved,
        remaining: status.remaining,
        period_end: status
            .period_end
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339()),
    }
}

/// `input.principal`: `principal` with these labels.
fn principal_part(principal: &Principal, labels: Vec<String>) -> PrincipalPart {
    PrincipalPart {
        id: principal.id.clone(),
        roles: principal.roles.clone(),
        tenant: principal.tenant.clone(),
        attributes: json_value(&json!(principal.attributes)),
        labels,
    }
}

/// `input.target`: what is being called.
fn policy_target(tool: &ToolEntry) -> TargetPart {
    let provider = tool.backend.provider();
    TargetPart {
        kind: tool.kind.name(),
        name: tool.name.clone(),
        tool: tool.local_name.clone(),
        plugin: tool.provider().to_string(),
        plugin_version: provider.version.clone(),
        plugin_sha256: tool.sha256().map(str::to_string),
        upstream: json_value(&json!(provider.upstream)),
        side_effects: tool.side_effects,
        labels: tool.labels.clone(),
    }
}

/// JSON with object keys sorted at every level, so equal documents digest equally.
///
/// serde_json keeps object keys in a sorted map (its `preserve_order` feature
/// is off in this build; a unit test fails if a dependency ever turns it on),
/// so its plain serialisation is already canonical.
pub fn canonical_json(value: &Value) -> String {
    value.to_string()
}

/// Longest locator kept for a source.
const LOCATOR_MAX: usize = 2048;

/// Where a call read what it returned, when its arguments name it: the
/// first of `url`, `uri`, `path` that is a string (of at most
/// [`LOCATOR_MAX`] bytes: a cut locator would match nothing).
fn locator(args: &Value) -> Option<String> {
    ["url", "uri", "path"]
        .iter()
        .find_map(|key| args.get(key).and_then(Value::as_str))
        .filter(|value| value.len() <= LOCATOR_MAX)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::{canonical_json, redact};
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let document: serde_json::Value =
            serde_json::from_str(r#"{"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": null}"#)
                .expect("json");
        assert_eq!(
            canonical_json(&document),
            r#"{"a":null,"b":{"a":[{"x":3,"y":2}],"z":1}}"#
        );
    }

    #[test]
    fn redaction_replaces_values_and_ignores_missing_pointers() {
        let mut doc = json!({"output": {"ssn": "123", "items": [{"card": "4111"}]}});
        redact(&mut doc, "/output/ssn");
        redact(&mut doc, "/output/items/0/card");
        redact(&mut doc, "/output/absent");
        assert_eq!(
            doc,
            json!({"output": {"ssn": "[redacted]", "items": [{"card": "[redacted]"}]}})
        );
    }
}
