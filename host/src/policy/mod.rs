//! Policy: a Rego bundle compiled once to a regorus RVM program and evaluated
//! on every call.
//!
//! A bundle is a directory of `*.rego` files plus an optional `data.json`. It
//! must define `data.warden.authz.decision`, an object
//! `{"allow": bool, "reasons": [string]}`; see `docs/policy.md` for the input
//! document. `*_test.rego` files hold OPA-style tests ([`testing`]): they are
//! not part of the decision, but a bundle whose tests fail is refused. The
//! bundle is identified by the SHA-256 of its files, recorded with every call.
//!
//! Evaluation runs on a pool of RVM instances: each call takes one, sets the
//! input, runs the compiled program under a time limit, and returns it.

pub mod builtins;
pub mod input;
pub mod signature;
pub mod testing;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regorus::rvm::vm::{ExecutionMode, ExecutionState, SuspendReason};
use regorus::rvm::{Program, RegoVM};
use regorus::utils::limits::ExecutionTimerConfig;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Evaluation time limit when the config does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// How bundles are loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Time limit of one evaluation.
    pub timeout: Duration,
    /// When set, bundles must be signed by this key.
    pub public_key: Option<ed25519_dalek::VerifyingKey>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            timeout: DEFAULT_TIMEOUT,
            public_key: None,
        }
    }
}
/// Idle VMs kept for reuse.
const POOL_MAX: usize = 64;
/// Host builtin calls one decision may make (the time limit bounds them too).
const HOST_CALLS_MAX: u32 = 10_000;

/// The rule every bundle must define: the decision before a call runs.
pub const ENTRYPOINT: &str = "data.warden.authz.decision";
/// The optional rule deciding on a call's output, after it ran.
pub const OUTPUT_ENTRYPOINT: &str = "data.warden.authz.output_decision";

/// Which decision point is being evaluated (`input.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the plugin runs: [`ENTRYPOINT`].
    Call,
    /// After it ran, with `input.output`: [`OUTPUT_ENTRYPOINT`].
    Output,
}

impl Stage {
    /// The stage's name, as `input.stage` and audit records carry it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Call => "call",
            Stage::Output => "output",
        }
    }

    fn entrypoint(self) -> &'static str {
        match self {
            Stage::Call => ENTRYPOINT,
            Stage::Output => OUTPUT_ENTRYPOINT,
        }
    }
}

/// A loaded, compiled policy bundle.
pub struct PolicyBundle {
    compiled: regorus::CompiledPolicy,
    has_output_decision: bool,
    program: Arc<Program>,
    data: regorus::Value,
    timeout: Duration,
    idle: Mutex<Vec<PooledVm>>,
    /// The identifiers of the host builtins, as the VM names them.
    builtin_ids: Vec<regorus::Value>,
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Whether the call (or, at the output stage, its output) may proceed.
    pub allow: bool,
    /// Why, for denials (and optionally for allows).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// What the host must do if the call proceeds.
    #[serde(default)]
    pub obligations: Obligations,
}

/// Conditions attached to an allow. Every field defaults to "nothing".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obligations {
    /// JSON Pointers to remove before the value leaves the host: `/output/...`
    /// from the response, `/args/...` from what is stored about the call.
    #[serde(default)]
    pub redact: Vec<String>,
    /// Tighter limits for this call than the plugin's capabilities.
    #[serde(default)]
    pub limits: NarrowedLimits,
    /// When set, the call does not run: it returns `pending-approval` with this reason.
    pub require_approval: Option<String>,
    /// How many times to retry a `tool-transient` failure (at most 5).
    #[serde(default)]
    pub retries: u8,
    /// Labels added to the call's session.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Verifiers (by name, `"*"` for all) whose findings are replaced in the
    /// content they were found in: the arguments before the tool runs (call
    /// stage), the output before the caller sees it (output stage).
    #[serde(default)]
    pub redact_findings: Vec<String>,
    /// For a completion: another model, a token cap, no tools.
    pub completion: Option<CompletionObligations>,
}

/// What policy may change about a completion it allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionObligations {
    /// Serve it with this configured model instead of the one asked for.
    pub route_to: Option<String>,
    /// The most tokens the completion may have: the request's `max_tokens`
    /// is set to this, or lowered to it.
    pub max_tokens: Option<u32>,
    /// Remove the tools the request offers (and its tool choice).
    #[serde(default)]
    pub strip_tools: bool,
    /// Keep the request and the answer in the record, sealed under the
    /// tenant's key (erased with it).
    #[serde(default)]
    pub keep_text: bool,
}

/// Limits a policy can narrow (never widen) for one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NarrowedLimits {
    /// Wall time in milliseconds.
    pub time_limit_ms: Option<u64>,
    /// Linear memory in MiB.
    pub memory_mb: Option<u64>,
    /// Output size in bytes.
    pub output_max_bytes: Option<usize>,
}

impl PolicyBundle {
    /// Loads every `*.rego` (except `*_test.rego`) and `data.json` under `dir`,
    /// checks its signature when a key is configured, compiles it, checks its
    /// input references, runs its own tests (refusing it if any fails), and
    /// hashes its contents.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<PolicyBundle> {
        let fail = |message: String| Error::Policy {
            dir: dir.to_path_buf(),
            message,
        };
        let files = BundleFiles::read(dir)?;
        let hash = files.hash();
        if let Some(key) = &options.public_key {
            signature::verify(dir, &hash, key).map_err(fail)?;
        }
        let mut engine = regorus::Engine::new();
        files.add_to(&mut engine, false).map_err(fail)?;
        let data = engine.get_data();
        let entrypoint: regorus::Rc<str> = regorus::Rc::from(ENTRYPOINT);
        let compiled = engine
            .compile_with_entrypoint(&entrypoint)
            .map_err(|e| fail(format!("cannot compile `{ENTRYPOINT}`: {e}")))?;
        let has_output_decision = compiled.get_rules().contains_key(OUTPUT_ENTRYPOINT);
        let entrypoints: &[&str] = if has_output_decision {
            &[ENTRYPOINT, OUTPUT_ENTRYPOINT]
        } else {
            &[ENTRYPOINT]
        };
        let program =
            regorus::languages::rego::compiler::Compiler::compile_from_policy_with_host_await(
                &compiled,
                entrypoints,
                builtins::HOST_AWAIT,
            )
            .map_err(|e| fail(format!("cannot compile the bundle for the VM: {e}")))?;
        files.check_input_references().map_err(fail)?;
        if files.has_tests() {
            let report = testing::run(&files).map_err(fail)?;
            let failed: Vec<String> = report
                .results
                .iter()
                .filter(|t| !t.passed)
                .map(|t| format!("{} ({})", t.name, t.outcome))
                .collect();
            if !failed.is_empty() {
                return Err(fail(format!(
                    "its own tests fail, so it is refused: {}",
                    failed.join(", ")
                )));
            }
        }
        Ok(PolicyBundle {
            compiled,
            has_output_decision,
            program,
            data,
            timeout: options.timeout,
            idle: Mutex::new(Vec::new()),
            builtin_ids: builtins::HOST_AWAIT
                .iter()
                .map(|(name, _)| regorus::Value::from(*name))
                .collect(),
            hash,
            dir: dir.to_path_buf(),
        })
    }

    /// The bundle's content hash (hex SHA-256).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    fn vm(&self) -> std::result::Result<PooledVm, String> {
        if let Some(vm) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(vm);
        }
        let mut vm = RegoVM::new_with_policy(self.compiled.clone());
        vm.load_program(self.program.clone());
        vm.set_data(self.data.clone())
            .map_err(|e| format!("loading policy data: {e}"))?;
        let check_interval = std::num::NonZeroU32::new(64).unwrap_or(std::num::NonZeroU32::MIN);
        vm.set_execution_timer_config(Some(ExecutionTimerConfig {
            limit: self.timeout,
            check_interval,
        }));
        Ok(PooledVm {
            vm,
            probe: regorus::Rc::from("warden: unanswered builtin probe"),
        })
    }

    /// Whether the bundle decides on outputs too.
    pub fn has_output_decision(&self) -> bool {
        self.has_output_decision
    }

    /// The output decision on `output` and the output verifiers' `verdicts`,
    /// for the call whose input is `input`. A bundle without
    /// `output_decision` allows without building its input.
    pub fn decide_output(
        &self,
        input: &PolicyInput,
        output: &serde_json::Value,
        verdicts: &regorus::Value,
    ) -> std::result::Result<Decision, String> {
        if !self.has_output_decision {
            return self.decide(Stage::Output, input);
        }
        self.decide(Stage::Output, &input.with_output(output, verdicts))
    }

    /// Evaluates the decision at `stage` for `input`. Any failure (evaluation
    /// error or timeout, undefined or malformed decision) is an `Err`, which
    /// callers treat as deny. A bundle without an output decision allows every
    /// output.
    pub fn decide(
        &self,
        stage: Stage,
        input: &PolicyInput,
    ) -> std::result::Result<Decision, String> {
        if stage == Stage::Output && !self.has_output_decision {
            return Ok(Decision {
                allow: true,
                ..Decision::default()
            });
        }
        let entrypoint = stage.entrypoint();
        let mut pooled = self.vm()?;
        // A cheap handle copy: the document is reference-counted.
        pooled.vm.set_input(input.0.clone());
        let value = if self.program.has_host_await {
            run_with_builtins(&mut pooled, &self.builtin_ids, entrypoint)?
        } else {
            pooled
                .vm
                .execute_entry_point_by_name(entrypoint)
                .map_err(|e| format!("evaluating `{entrypoint}`: {e}"))?
        };
        // Only a VM that finished cleanly goes back to the pool.
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POOL_MAX
        {
            idle.push(pooled);
        }
        parse_decision(entrypoint, &value)
    }
}

/// Runs `entrypoint` of a bundle that calls host builtins.
///
/// Most decisions never reach a builtin call (the rules that use one guard
/// it behind the tool they are about), and a run to completion costs about
/// 30 % less than a suspendable one. So the VM first runs to completion with
/// one probe value queued as the answer of each builtin. A probe the run did
/// not consume proves that no builtin was called, and then that result is
/// the decision. If any probe was consumed, that result is discarded (a rule
/// saw the probe, not the real answer) and the decision runs again in
/// suspendable mode, where the host answers each call.
fn run_with_builtins(
    pooled: &mut PooledVm,
    builtin_ids: &[regorus::Value],
    entrypoint: &str,
) -> std::result::Result<regorus::Value, String> {
    let failed = |e: regorus::rvm::vm::VmError| format!("evaluating `{entrypoint}`: {e}");
    let PooledVm { vm, probe } = pooled;
    vm.set_execution_mode(ExecutionMode::RunToCompletion);
    vm.set_host_await_responses(
        builtin_ids
            .iter()
            .map(|id| (id.clone(), [regorus::Value::String(probe.clone())])),
    );
    let completed = vm.execute_entry_point_by_name(entrypoint);
    // Clearing the queue drops exactly the probes the run left unconsumed
    // (a consumed probe may live on in registers; clearing does not touch them).
    let before = regorus::Rc::strong_count(probe);
    vm.set_host_await_responses(std::iter::empty::<(regorus::Value, Vec<regorus::Value>)>());
    let unconsumed = before.saturating_sub(regorus::Rc::strong_count(probe));
    if unconsumed == builtin_ids.len() {
        return completed.map_err(failed);
    }
    vm.set_execution_mode(ExecutionMode::Suspendable);
    let mut value = vm.execute_entry_point_by_name(entrypoint).map_err(failed)?;
    // Answer the policy's calls of host builtins until it completes.
    let mut answered = 0;
    while let ExecutionState::Suspended { reason, .. } = vm.execution_state() {
        let SuspendReason::HostAwait {
            identifier,
            argument,
            ..
        } = reason
        else {
            return Err(format!("evaluating `{entrypoint}`: suspended: {reason:?}"));
        };
        answered += 1;
        if answered > HOST_CALLS_MAX {
            return Err(format!(
                "evaluating `{entrypoint}`: more than {HOST_CALLS_MAX} builtin calls"
            ));
        }
        let answer = builtins::answer(identifier, argument)
            .map_err(|e| format!("evaluating `{entrypoint}`: {e}"))?;
        value = vm.resume(Some(answer)).map_err(failed)?;
    }
    Ok(value)
}

/// A VM of the pool, with the probe its decisions queue as the answer of
/// each host builtin (its own, so that counting its references measures only
/// this VM's runs).
struct PooledVm {
    vm: RegoVM,
    probe: regorus::Rc<str>,
}

/// A policy input document (`input`), held in the evaluator's own value type:
/// built or converted once per call and shared by every decision point
/// (call, shadow, output) without another copy.
#[derive(Debug, Clone)]
pub struct PolicyInput(regorus::Value);

impl PolicyInput {
    /// Wraps a document built in the evaluator's value type.
    pub fn new(document: regorus::Value) -> PolicyInput {
        PolicyInput(document)
    }

    /// Converts a JSON document (for inputs read from files or requests).
    pub fn from_json(document: &serde_json::Value) -> PolicyInput {
        PolicyInput(json_value(document))
    }

    /// The document as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// The input of the output decision: this call's document with
    /// `stage = "output"`, the tool's `output` and the output verifiers'
    /// `verdicts` (in place of the input verifiers').
    pub fn with_output(
        &self,
        output: &serde_json::Value,
        verdicts: &regorus::Value,
    ) -> PolicyInput {
        use input::{InputValue, OutputPart};
        let mut document = self.0.clone();
        let part = OutputPart {
            stage: Stage::Output.name(),
            output: json_value(output),
            verdicts: verdicts.clone(),
        };
        if let (Ok(fields), regorus::Value::Object(set)) =
            (document.as_object_mut(), part.into_input())
        {
            for (name, value) in set.iter() {
                fields.insert(name.clone(), value.clone());
            }
        }
        PolicyInput(document)
    }
}

/// A JSON value in the evaluator's value type, read in place (no copy of
/// the JSON first).
pub fn json_value(value: &serde_json::Value) -> regorus::Value {
    use serde::Deserialize;
    // Every JSON value has a Rego counterpart, so this cannot fail.
    regorus::Value::deserialize(value).unwrap_or(regorus::Value::Undefined)
}

fn parse_decision(
    entrypoint: &str,
    value: &regorus::Value,
) -> std::result::Result<Decision, String> {
    if *value == regorus::Value::Undefined {
        return Err(format!("`{entrypoint}` is undefined for this input"));
    }
    let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    serde_json::from_value(json).map_err(|e| {
        format!(
            "`{entrypoint}` must be {{\"allow\": bool, \"reasons\": [string], \"obligations\": {{...}}}} \
             (docs/policy.md): {e}"
        )
    })
}

/// The files of a bundle directory, read once, in a stable order.
#[derive(Debug)]
pub struct BundleFiles {
    /// (relative name, contents), sorted by name.
    files: Vec<(String, String)>,
}

impl BundleFiles {
    /// Reads every `*.rego` and `data.json` under `dir`.
    pub fn read(dir: &Path) -> Result<BundleFiles> {
        let fail = |message: String| Error::Policy {
            dir: dir.to_path_buf(),
            message,
        };
        let mut names = Vec::new();
        collect_files(dir, dir, &mut names).map_err(|e| fail(e.to_string()))?;
        names.sort();
        let mut files = Vec::new();
        for relative in names {
            let path = dir.join(&relative);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            files.push((relative.to_string_lossy().replace('\\', "/"), text));
        }
        if !files.iter().any(|(name, _)| is_policy(name)) {
            return Err(fail("contains no .rego files".into()));
        }
        Ok(BundleFiles { files })
    }

    /// SHA-256 over every file's name and contents.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for (name, text) in &self.files {
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Whether the bundle has `*_test.rego` files.
    pub fn has_tests(&self) -> bool {
        self.files.iter().any(|(name, _)| is_test(name))
    }

    /// The test files, by name.
    pub fn tests(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .filter(|(name, _)| is_test(name))
            .map(|(n, t)| (n.as_str(), t.as_str()))
    }

    /// Adds the host's builtins, the policies (and, with `with_tests`, the
    /// tests) and data to `engine`.
    pub fn add_to(
        &self,
        engine: &mut regorus::Engine,
        with_tests: bool,
    ) -> std::result::Result<(), String> {
        builtins::register(engine)?;
        for (name, text) in &self.files {
            if is_policy(name) || (with_tests && is_test(name)) {
                engine
                    .add_policy(name.clone(), text.clone())
                    .map_err(|e| format!("{e}"))?;
            } else if name.ends_with(".json") {
                let data = regorus::Value::from_json_str(text)
                    .map_err(|e| format!("{name}: invalid JSON: {e}"))?;
                engine.add_data(data).map_err(|e| format!("{name}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Refuses a policy that reads an input field the host never provides: such
    /// a rule would silently never match (and, in an allow rule, always deny).
    pub fn check_input_references(&self) -> std::result::Result<(), String> {
        for (name, text) in &self.files {
            if is_policy(name)
                && let Some((line, reference)) = input::unknown_input_reference(text)
            {
                return Err(format!(
                    "{name}:{line}: `{reference}` is not part of the input document (see docs/policy.md)"
                ));
            }
        }
        Ok(())
    }
}

fn is_test(name: &str) -> bool {
    name.ends_with("_test.rego")
}

fn is_policy(name: &str) -> bool {
    name.ends_with(".rego") && !is_test(name)
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
        let wanted = name.ends_with(".rego") || name == "data.json";
        if wanted && let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::input::unknown_input_reference;
    use super::{LoadOptions, PolicyBundle, PolicyInput, Stage};

    /// A bundle whose decision calls `warden.parse_url` only for some inputs,
    /// and twice when it does, so a run that saw the probe instead of the
    /// real answers would decide differently.
    const BUILTIN_BUNDLE: &str = r#"package warden.authz

default decision := {"allow": false, "reasons": ["no"]}

decision := {"allow": true, "reasons": [concat(":", [a.host, b.host])]} if {
	input.target.name == "fetch"
	a := warden.parse_url(input.args.first)
	b := warden.parse_url(input.args.second)
	a.port == 80
}

decision := {"allow": true, "reasons": ["plain"]} if input.target.name == "plain"
"#;

    fn decide(bundle: &PolicyBundle, input: serde_json::Value) -> (bool, Vec<String>) {
        let decision = bundle
            .decide(Stage::Call, &PolicyInput::from_json(&input))
            .unwrap();
        (decision.allow, decision.reasons)
    }

    #[test]
    fn builtin_calls_are_answered_whichever_path_the_decision_takes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("authz.rego"), BUILTIN_BUNDLE).unwrap();
        let bundle = PolicyBundle::load(dir.path(), &LoadOptions::default()).unwrap();
        // The same pooled VMs serve every case, in both orders.
        for _ in 0..3 {
            let fetch = serde_json::json!({"target": {"name": "fetch"},
                "args": {"first": "http://a.example/", "second": "https://B.example:1/"}});
            assert_eq!(
                decide(&bundle, fetch),
                (true, vec!["a.example:b.example".to_string()])
            );
            let plain = serde_json::json!({"target": {"name": "plain"}, "args": {}});
            assert_eq!(decide(&bundle, plain), (true, vec!["plain".to_string()]));
            let other_port = serde_json::json!({"target": {"name": "fetch"},
                "args": {"first": "http://a.example:81/", "second": "http://b.example/"}});
            assert_eq!(decide(&bundle, other_port), (false, vec!["no".to_string()]));
        }
    }

    #[test]
    fn input_references_are_checked_against_the_contract() {
        let ok = "allow if input.principal.roles[_] == \"a\"\nx := input.args.anything.deep\n\
                  y := input.session.labels # input.nonsense in a comment\nz := myinput.foo\n";
        assert_eq!(unknown_input_reference(ok), None);
        assert_eq!(
            unknown_input_reference("a := 1\nallow if input.princpal.id == \"x\"\n"),
            Some((2, "input.princpal".to_string()))
        );
        assert_eq!(
            unknown_input_reference("allow if input.target.nmae == \"x\"\n"),
            Some((1, "input.target.nmae".to_string()))
        );
        // Every level comes from the published schema: the capability kinds'
        // summaries, scalars without fields, free-form arguments.
        assert_eq!(
            unknown_input_reference("x := input.capabilities.kv\n"),
            None
        );
        assert_eq!(
            unknown_input_reference("x := input.capabilities.sockets\n"),
            Some((1, "input.capabilities.sockets".to_string()))
        );
        assert_eq!(
            unknown_input_reference("x := input.stage.name\n"),
            Some((1, "input.stage.name".to_string()))
        );
        assert_eq!(
            unknown_input_reference("x := input.output.any.thing\n"),
            None
        );
        assert_eq!(unknown_input_reference("x := input.time.unix_ns\n"), None);
    }
}
