//! The call pipeline. Every call, from every face (HTTP, MCP, CLI), goes
//! through [`Kernel::call`]:
//!
//! resolve tool -> session context -> policy decision -> validate args ->
//! intent record (side effects) -> fresh sandbox run -> output checks ->
//! output decision -> audit record (committed) -> response.
//!
//! Failures at any stage are results with a stable [`ErrorCode`], recorded in
//! the audit trail like successes. If the record cannot be committed the
//! caller gets `audit-unavailable` instead of the result: nothing is returned
//! that the trail does not hold.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::{Value, json};

use crate::audit::{AuditLog, AuditRecord};
use crate::bounds::bounded;
use crate::capabilities::Effective;
use crate::config::{Config, PolicySettings};
use crate::error::{CallError, ErrorCode, Result};
use crate::policy::{
    BundleFiles, Decision, NarrowedLimits, PolicyBundle, PolicyInput, Stage, json_value,
};
use crate::principal::{Principal, Principals, sha256_hex};
use crate::registry::{Backend, Registry, ToolEntry};
use crate::sandbox::Sandbox;
use crate::session::{CallContext, CallLabels, Usage, check_session_id};

/// Version of the policy input document (`input.version`); see `docs/policy.md`.
pub const POLICY_INPUT_VERSION: u32 = 1;

/// The policy-enforcement kernel: plugins, policy, sandbox and audit trail.
#[derive(Debug)]
pub struct Kernel {
    registry: Registry,
    /// The active bundle; swapped whole on reload, so a call sees one bundle.
    policy: RwLock<Arc<PolicyBundle>>,
    /// The candidate bundle of shadow mode, if configured.
    shadow: RwLock<Option<Arc<PolicyBundle>>>,
    policy_settings: PolicySettings,
    store_policy_input: bool,
    context: CallContext,
    audit: AuditLog,
    sandbox: Sandbox,
    principals: Principals,
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
}

/// The answer to a call: its id (the audit record's `call_id`) and its result.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// Id of the call and of its audit record.
    pub call_id: String,
    /// The tool's output, or why there is none.
    pub result: std::result::Result<Value, CallError>,
}

/// What the pipeline learned, for the audit record, whatever the outcome.
#[derive(Default)]
struct Trail {
    plugin: Option<String>,
    plugin_sha256: Option<String>,
    upstream: Option<String>,
    decision: &'static str,
    reasons: Vec<String>,
    shadow: Option<String>,
    policy_input: Option<String>,
    /// What the sandbox refused the call, even if the plugin went on.
    refusals: Vec<String>,
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
        let registry = Registry::load(config, &sandbox).await?;
        let audit = AuditLog::open(&config.audit_url, &config.audit).await?;
        Ok(Kernel {
            registry,
            policy: RwLock::new(Arc::new(policy)),
            shadow: RwLock::new(shadow),
            policy_settings: config.policy.clone(),
            store_policy_input: config.audit_store_policy_input,
            context: CallContext::new(config.sessions.clone()),
            audit,
            sandbox,
            principals: Principals::new(&config.principals),
        })
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

    /// Reloads the policy bundle (and the shadow bundle) if its files changed.
    /// A bundle that fails to verify, parse, compile or pass its own tests is
    /// refused and the active one stays: `Err` says why. `Ok(Some(hash))` when
    /// a new active bundle took effect.
    pub fn reload_policy(&self) -> Result<Option<String>> {
        if let Some(dir) = &self.policy_settings.shadow_dir
            && let Some(bundle) = self.changed_bundle(dir, self.shadow_policy().as_deref())?
        {
            match self.shadow.write() {
                Ok(mut shadow) => *shadow = Some(bundle),
                Err(poisoned) => *poisoned.into_inner() = Some(bundle),
            }
        }
        let Some(bundle) = self.changed_bundle(&self.policy_settings.dir, Some(&self.policy()))?
        else {
            return Ok(None);
        };
        let hash = bundle.hash().to_string();
        match self.policy.write() {
            Ok(mut policy) => *policy = bundle,
            Err(poisoned) => *poisoned.into_inner() = bundle,
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
            let mut last_error = String::new();
            loop {
                tokio::time::sleep(interval).await;
                let Some(kernel) = kernel.upgrade() else {
                    return;
                };
                match kernel.reload_policy() {
                    Ok(Some(hash)) => tracing::info!(%hash, "policy bundle reloaded"),
                    Ok(None) => {}
                    Err(e) => {
                        let message = e.to_string();
                        if message != last_error {
                            tracing::error!(error = %message, "policy bundle refused; the previous one stays active");
                            last_error = message;
                        }
                    }
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

    /// Whether policy allows `principal` to call `tool` with empty arguments.
    /// Rules on argument values cannot be judged here; every real call is
    /// decided in full.
    fn could_allow(&self, principal: &Arc<Principal>, tool: &ToolEntry) -> bool {
        let request = CallRequest {
            principal: principal.clone(),
            tool: tool.name.clone(),
            args: json!({}),
            session: None,
        };
        let context = CallLabels {
            session: Vec::new(),
            principal: Vec::new(),
            usage: Usage {
                tenant_calls: 0,
                principal_calls: 0,
            },
        };
        let input = policy_input(&request, tool, context);
        self.policy()
            .decide(Stage::Call, &input)
            .is_ok_and(|decision| decision.allow)
    }

    /// Runs one call through the whole pipeline and records it.
    pub async fn call(&self, request: CallRequest) -> CallResponse {
        let started = Instant::now();
        let call_id = uuid::Uuid::new_v4().to_string();
        let mut trail = Trail {
            decision: "none",
            ..Trail::default()
        };
        let policy = self.policy();
        let result = self
            .run(&request, &call_id, &policy, &mut trail)
            .await
            .map_err(bounded_error);
        let duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let mut record = record(
            &request,
            &call_id,
            &policy,
            &trail,
            Some(result.as_ref().map(|_| ())),
            duration_us,
        );
        if let Ok(output) = &result {
            record.output_digest = Some(sha256_hex(canonical_json(output).as_bytes()));
        }
        let result = match self.audit.append(record).await {
            Ok(()) => result,
            Err(e) => Err(CallError::new(
                ErrorCode::AuditUnavailable,
                format!("the call's audit record could not be committed, so it is denied: {e}"),
            )),
        };
        CallResponse { call_id, result }
    }

    async fn run(
        &self,
        request: &CallRequest,
        call_id: &str,
        policy: &PolicyBundle,
        trail: &mut Trail,
    ) -> std::result::Result<Value, CallError> {
        // Resolve.
        let tool = self.registry.tool(&request.tool).ok_or_else(|| {
            CallError::new(
                ErrorCode::UnknownTool,
                format!("no tool named `{}`", bounded(&request.tool, NAME_SHOWN_MAX)),
            )
        })?;
        trail.plugin = Some(tool.provider().to_string());
        trail.plugin_sha256 = tool.sha256().map(str::to_string);
        if let Backend::Upstream(upstream) = &tool.backend {
            trail.upstream = Some(upstream.identity_json.clone());
        }

        // Decide, before the call and before its arguments are validated: a
        // principal whom policy denies the tool costs no schema validation.
        let session = request.session.as_deref();
        let context = self.context.begin_call(&request.principal, session)?;
        let input = policy_input(request, tool, context);
        let verdict = policy.decide(Stage::Call, &input);
        if let Some(shadow) = self.shadow_policy() {
            trail.shadow = disagreement(&shadow, &input, &verdict);
        }
        if self.store_policy_input {
            let mut stored = input.to_json();
            if let Ok(decision) = &verdict {
                for pointer in &decision.obligations.redact {
                    redact(&mut stored, pointer);
                }
            }
            trail.policy_input = Some(stored.to_string());
        }
        let decision = judge(verdict, Stage::Call, trail, tool, request)?;

        // Validate. A call runs only if it is both allowed and valid, so the
        // order costs nothing in safety; deciding first means a principal whom
        // policy denies the tool never makes the host validate its arguments.
        tool.input
            .check_within(&request.args, tool.capabilities().time_limit)
            .await
            .map_err(|m| {
                CallError::new(
                    ErrorCode::InvalidArgs,
                    format!("arguments for `{}` {m}", tool.name),
                )
            })?;

        if let Some(reason) = &decision.obligations.require_approval {
            return Err(CallError {
                reasons: vec![reason.clone()],
                ..CallError::new(
                    ErrorCode::PendingApproval,
                    format!("`{}` needs approval before it can run", tool.name),
                )
            });
        }

        // A side-effecting call leaves a committed intent record before it
        // runs, so a crash mid-call shows as an incomplete call, not silence.
        if tool.side_effects {
            self.audit
                .append(AuditRecord {
                    intent: true,
                    ..record(request, call_id, policy, trail, None, 0)
                })
                .await
                .map_err(|e| {
                    CallError::new(
                        ErrorCode::AuditUnavailable,
                        format!(
                            "the intent record could not be committed, so `{}` did not run: {e}",
                            tool.name
                        ),
                    )
                })?;
        }

        // Run.
        let capabilities = narrowed(tool.capabilities(), &decision.obligations.limits);
        let output = self
            .invoke(
                tool,
                &capabilities,
                request,
                decision.obligations.retries,
                &mut trail.refusals,
            )
            .await;
        // The tool ran, or tried to: whatever it read now marks the session.
        let principal = &request.principal;
        self.context.add_labels(principal, session, &tool.labels)?;
        self.context
            .add_labels(principal, session, &decision.obligations.labels)?;
        let output = check_output(tool, &capabilities, &output?).await?;

        // Decide, after the call, on its output.
        let after = judge(
            policy.decide_output(&input, &output),
            Stage::Output,
            trail,
            tool,
            request,
        )?;
        self.context
            .add_labels(principal, session, &after.obligations.labels)?;

        let mut response = json!({ "output": output });
        for pointer in decision
            .obligations
            .redact
            .iter()
            .chain(&after.obligations.redact)
        {
            redact(&mut response, pointer);
        }
        Ok(response["output"].take())
    }

    /// Runs the tool within its provider's concurrency limit, retrying
    /// `tool-transient` failures as often as policy allows: in a fresh
    /// sandbox for a plugin, forwarded for an upstream.
    async fn invoke(
        &self,
        tool: &ToolEntry,
        capabilities: &Effective,
        request: &CallRequest,
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
        let _slot = tokio::time::timeout(capabilities.time_limit, tool.slots().acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let args = request.args.to_string();
        let mut attempt = 0;
        loop {
            let result = match &tool.backend {
                Backend::Plugin(plugin) => {
                    let invocation = self
                        .sandbox
                        .invocation(
                            &plugin.name,
                            &plugin.prepared,
                            capabilities,
                            &tool.local_name,
                            &args,
                        )
                        .await;
                    refusals.extend(invocation.refusals);
                    invocation.output
                }
                Backend::Upstream(upstream) => {
                    upstream
                        .call(&tool.local_name, &request.args, capabilities.time_limit)
                        .await
                }
            };
            match result {
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
        args_digest: sha256_hex(canonical_json(&request.args).as_bytes()),
        outcome,
        output_digest: None,
        error,
        duration_us,
        intent: false,
        shadow: trail.shadow.clone(),
        policy_input: trail.policy_input.clone(),
        refusals: trail.refusals.clone(),
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
    if reasons.len() > REASONS_MAX {
        let dropped = reasons.len() - REASONS_MAX + 1;
        reasons.truncate(REASONS_MAX - 1);
        reasons.push(format!("…and {dropped} more reasons"));
    }
    for reason in reasons.iter_mut() {
        if reason.len() > REASON_MAX {
            *reason = bounded(reason, REASON_MAX).into_owned();
        }
    }
}

/// Most retries a policy can ask for.
const MAX_RETRIES: u8 = 5;

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

/// Turns one decision point's verdict into the call's fate: a denial or an
/// evaluation failure is the call's error.
fn judge(
    verdict: std::result::Result<Decision, String>,
    stage: Stage,
    trail: &mut Trail,
    tool: &ToolEntry,
    request: &CallRequest,
) -> std::result::Result<Decision, CallError> {
    let decision = verdict.map_err(|m| {
        trail.decision = "deny";
        CallError::new(
            ErrorCode::PolicyError,
            format!("policy could not decide: {m}"),
        )
    })?;
    trail.reasons.extend(decision.reasons.iter().cloned());
    bound_reasons(&mut trail.reasons);
    if decision.allow {
        trail.decision = "allow";
        return Ok(decision);
    }
    trail.decision = "deny";
    let reasons = if decision.reasons.is_empty() {
        vec!["no policy rule allows this call".to_string()]
    } else {
        decision.reasons
    };
    let what = match stage {
        Stage::Call => format!("`{}`", tool.name),
        Stage::Output => format!("the output of `{}`", tool.name),
    };
    Err(CallError {
        reasons,
        ..CallError::new(
            ErrorCode::PolicyDenied,
            format!("policy denied {what} for `{}`", request.principal.id),
        )
    })
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
        narrowed.memory_bytes = narrowed.memory_bytes.min(mb << 20);
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

/// The policy input document, version [`POLICY_INPUT_VERSION`], of the call
/// stage. Built directly in the evaluator's value type; the parts that never
/// change (principal, target, capabilities) are built once and shared.
pub fn policy_input(request: &CallRequest, tool: &ToolEntry, context: CallLabels) -> PolicyInput {
    use regorus::Value as Rego;
    let now = chrono::Utc::now();
    let [target, capabilities] = tool.policy_parts.get_or_init(|| {
        [
            json_value(&policy_target(tool)),
            json_value(&tool.capabilities().summary()),
        ]
    });
    let mut principal = request
        .principal
        .policy_document
        .get_or_init(|| {
            let mut document = json!(&*request.principal);
            document["labels"] = json!([]);
            json_value(&document)
        })
        .clone();
    if !context.principal.is_empty()
        && let Ok(fields) = principal.as_object_mut()
    {
        let labels: Vec<Rego> = context.principal.into_iter().map(Rego::from).collect();
        fields.insert(Rego::from("labels"), Rego::from(labels));
    }
    let object = |fields: Vec<(&str, Rego)>| {
        Rego::from(
            fields
                .into_iter()
                .map(|(k, v)| (Rego::from(k), v))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
    };
    let session_id = request.session.as_deref().map_or(Rego::Null, Rego::from);
    let labels = context
        .session
        .into_iter()
        .map(Rego::from)
        .collect::<Vec<_>>();
    let usage = context.usage;
    PolicyInput::new(object(vec![
        ("version", Rego::from(u64::from(POLICY_INPUT_VERSION))),
        ("stage", Rego::from("call")),
        ("principal", principal),
        (
            "session",
            object(vec![("id", session_id), ("labels", Rego::from(labels))]),
        ),
        ("target", target.clone()),
        ("args", json_value(&request.args)),
        ("capabilities", capabilities.clone()),
        (
            "usage",
            object(vec![
                ("tenant_calls", Rego::from(usage.tenant_calls)),
                ("principal_calls", Rego::from(usage.principal_calls)),
            ]),
        ),
        (
            "time",
            object(vec![
                ("rfc3339", Rego::from(now.to_rfc3339())),
                (
                    "unix_ns",
                    now.timestamp_nanos_opt().map_or(Rego::Null, Rego::from),
                ),
            ]),
        ),
    ]))
}

/// `input.target`: what is being called.
fn policy_target(tool: &ToolEntry) -> Value {
    let (version, upstream) = match &tool.backend {
        Backend::Plugin(plugin) => (plugin.manifest.version.as_str(), Value::Null),
        Backend::Upstream(upstream) => (
            upstream
                .identity
                .server_version
                .as_deref()
                .unwrap_or_default(),
            json!(upstream.identity),
        ),
    };
    json!({
        "kind": "tool",
        "name": tool.name,
        "tool": tool.local_name,
        "plugin": tool.provider(),
        "plugin_version": version,
        "plugin_sha256": tool.sha256(),
        "upstream": upstream,
        "side_effects": tool.side_effects,
        "labels": tool.labels,
    })
}

/// JSON with object keys sorted at every level, so equal documents digest equally.
///
/// serde_json keeps object keys in a sorted map (its `preserve_order` feature
/// is off in this build; a unit test fails if a dependency ever turns it on),
/// so its plain serialisation is already canonical.
pub fn canonical_json(value: &Value) -> String {
    value.to_string()
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
