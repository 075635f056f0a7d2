//! Verify: sandboxed verifiers examine what passes through a call, the
//! arguments on the way in (stage `input`) and the output on the way out
//! (stage `output`). Every verifier that applies runs concurrently, each in
//! a fresh sandbox with only its own grants, and sees only the subject: never
//! another verifier's verdict. Verifiers decide nothing; their checked
//! verdicts become `input.verdicts.NAME` for policy and part of the audit
//! record. A verifier that fails, times out, traps or answers something
//! malformed yields an `error` verdict, which the default bundle denies on.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::audit::{FindingRecord, VerdictRecord};
use crate::capabilities::Effective;
use crate::config::{Config, VerifierConfig, VerifierStage};
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::glob::glob_matches;
use crate::manifest::PluginKind;
use crate::registry::{LoadedComponent, load_component};
use crate::sandbox::{Prepared, Sandbox, verification};
use crate::session::Source;

/// Most findings one verdict may carry; more make the verdict an error.
const FINDINGS_MAX: usize = 1000;
/// Longest finding message kept, and longest error kept.
const MESSAGE_MAX: usize = 512;
const ERROR_MAX: usize = 1024;
/// Longest replacement a verifier may propose for a match.
const REPLACEMENT_MAX: usize = 256;

/// Every configured verifier, in name order.
#[derive(Debug, Default)]
pub struct Verifiers {
    all: Vec<Arc<LoadedVerifier>>,
}

/// A verifier ready to run.
pub struct LoadedVerifier {
    /// Name in the host configuration.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// SHA-256 of the component.
    pub sha256: String,
    /// Where it applies and whether it is advisory.
    config: VerifierConfig,
    capabilities: Effective,
    prepared: Prepared,
    sandbox: Sandbox,
    /// One permit per run allowed at once.
    slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for LoadedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedVerifier")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// One verifier's checked verdict: what is recorded, and the replacement it
/// proposed for each finding (kept out of the record: a mask may keep part
/// of the match).
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The verdict as recorded and as policy sees it.
    pub record: VerdictRecord,
    /// The proposed replacement of each finding, by index.
    replacements: Vec<Option<String>>,
}

/// What a verifier is shown.
#[derive(Debug)]
pub struct Subject<'a> {
    /// Which side of the call.
    pub stage: VerifierStage,
    /// The target's qualified name.
    pub target: &'a str,
    /// The content: the arguments or the output.
    pub content: &'a Value,
    /// The tenant of the principal the call runs for.
    pub tenant: &'a str,
    /// The session's labels.
    pub session_labels: &'a [String],
    /// The output contracts that apply, each as JSON text.
    pub contracts: &'a [Arc<str>],
    /// The outputs returned earlier in the session, oldest first; shown
    /// only to verifiers configured with `sources = true`.
    pub sources: &'a [Source],
}

impl Verifiers {
    /// Loads every verifier in the config. The first that fails stops the
    /// load, naming what is wrong.
    pub async fn load(config: &Config, sandbox: &Sandbox) -> Result<Verifiers> {
        let mut all = Vec::new();
        for (name, verifier) in &config.verifiers {
            let source = verifier.source();
            let LoadedComponent {
                manifest,
                sha256,
                capabilities,
                prepared,
            } = load_component(name, PluginKind::Verifier, &source, config, sandbox)
                .await
                .map_err(|message| Error::Verifier {
                    verifier: name.clone(),
                    message,
                })?;
            all.push(Arc::new(LoadedVerifier {
                name: name.clone(),
                version: manifest.version,
                sha256,
                config: verifier.clone(),
                slots: tokio::sync::Semaphore::new(capabilities.max_concurrent as usize),
                capabilities,
                prepared,
                sandbox: sandbox.clone(),
            }));
        }
        Ok(Verifiers { all })
    }

    /// The verifier called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedVerifier>> {
        self.all.iter().find(|v| v.name == name)
    }

    /// All verifiers, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedVerifier>> {
        self.all.iter()
    }

    /// Whether some verifier examines `stage` of calls to `target`.
    pub fn any_applies(&self, stage: VerifierStage, target: &str) -> bool {
        self.all.iter().any(|v| v.applies(stage, target))
    }

    /// Whether some verifier sees the sessions' earlier outputs: only then
    /// does a session keep them.
    pub fn any_sees_sources(&self) -> bool {
        self.all.iter().any(|v| v.config.sources)
    }

    /// Whether some verifier that sees sources examines `stage` of `target`.
    pub fn sources_needed(&self, stage: VerifierStage, target: &str) -> bool {
        self.all
            .iter()
            .any(|v| v.config.sources && v.applies(stage, target))
    }

    /// The verdicts of every verifier that applies to `subject`, in name
    /// order; they run concurrently, each in its own sandbox.
    pub async fn verify(&self, subject: &Subject<'_>) -> Vec<Verdict> {
        let applicable: Vec<&Arc<LoadedVerifier>> = self
            .all
            .iter()
            .filter(|v| v.applies(subject.stage, subject.target))
            .collect();
        if applicable.is_empty() {
            return Vec::new();
        }
        // Built once for the verifiers without sources and once, when one
        // sees them, for those with.
        let without = Arc::new(shown_subject(subject, false));
        let with = applicable
            .iter()
            .any(|v| v.config.sources)
            .then(|| Arc::new(shown_subject(subject, true)));
        let mut runs = tokio::task::JoinSet::new();
        for (index, verifier) in applicable.iter().enumerate() {
            let shown = match &with {
                Some(with) if verifier.config.sources => with,
                _ => &without,
            };
            let (verifier, shown) = (Arc::clone(verifier), Arc::clone(shown));
            runs.spawn(async move { (index, verifier.run(&shown).await) });
        }
        let mut answers: Vec<Option<std::result::Result<verification::Verdict, String>>> =
            vec![None; applicable.len()];
        while let Some(joined) = runs.join_next().await {
            if let Ok((index, answer)) = joined {
                answers[index] = Some(answer);
            }
        }
        applicable
            .iter()
            .zip(answers)
            .map(|(verifier, answer)| {
                let answer = answer.unwrap_or_else(|| Err("the verifier's task failed".into()));
                verifier.checked(subject, answer)
            })
            .collect()
    }
}

impl LoadedVerifier {
    /// Whether it examines `stage` of calls to `target`.
    pub fn applies(&self, stage: VerifierStage, target: &str) -> bool {
        self.config.stages.contains(&stage)
            && self
                .config
                .targets
                .iter()
                .any(|glob| glob_matches(glob, target))
    }

    /// Runs the verifier on `subject` alone (`warden verify`): its checked verdict.
    pub async fn verify_one(&self, subject: &Subject<'_>) -> Verdict {
        let answer = self.run(&shown_subject(subject, self.config.sources)).await;
        self.checked(subject, answer)
    }

    /// One run in a fresh sandbox, within its concurrency and time limits.
    async fn run(
        &self,
        subject: &verification::Subject,
    ) -> std::result::Result<verification::Verdict, String> {
        let limit = self.capabilities.time_limit;
        let busy = || {
            format!(
                "running its maximum of {} concurrent verifications for {} ms",
                self.capabilities.max_concurrent,
                limit.as_millis()
            )
        };
        let _slot = tokio::time::timeout(limit, self.slots.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        self.sandbox
            .verify(&self.name, &self.prepared, &self.capabilities, subject)
            .await
    }

    /// The verifier's answer, checked against the content: a malformed
    /// answer is an `error` verdict, never a partial pass.
    fn checked(
        &self,
        subject: &Subject<'_>,
        answer: std::result::Result<verification::Verdict, String>,
    ) -> Verdict {
        let record = |verdict: &str, findings, error| VerdictRecord {
            stage: subject.stage.name().to_string(),
            verifier: self.name.clone(),
            sha256: self.sha256.clone(),
            verdict: verdict.to_string(),
            advisory: self.config.advisory,
            findings,
            error,
        };
        let failed = |why: String| Verdict {
            record: record("error", Vec::new(), Some(clean_text(&why, ERROR_MAX))),
            replacements: Vec::new(),
        };
        let verdict = match answer {
            Ok(verdict) => verdict,
            Err(why) => return failed(why),
        };
        match check_verdict(verdict, subject.content) {
            Ok((findings, replacements)) => {
                let kind = if findings.is_empty() {
                    "clean"
                } else {
                    "findings"
                };
                Verdict {
                    record: record(kind, findings, None),
                    replacements,
                }
            }
            Err(why) => failed(format!("malformed verdict: {why}")),
        }
    }
}

/// Loads the verifier `name` of `config` alone and runs it once on
/// `content` (`warden verify`): its checked verdict and the content with
/// every finding redacted.
pub async fn verify_document(
    config: &Config,
    name: &str,
    stage: VerifierStage,
    target: &str,
    tenant: &str,
    content: &Value,
) -> Result<(Verdict, Value)> {
    let mut only = config.clone();
    only.plugins.clear();
    only.verifiers.retain(|n, _| n == name);
    if only.verifiers.is_empty() {
        return Err(Error::Verifier {
            verifier: name.to_string(),
            message: format!("no `[verifiers.{name}]` in {}", config.path.display()),
        });
    }
    let sandbox = Sandbox::new(&only)?;
    let verifiers = Verifiers::load(&only, &sandbox).await?;
    let verifier = verifiers.get(name).ok_or_else(|| Error::Verifier {
        verifier: name.to_string(),
        message: "did not load".into(),
    })?;
    let subject = Subject {
        stage,
        target,
        content,
        tenant,
        session_labels: &[],
        contracts: &[],
        sources: &[],
    };
    let verdict = verifier.verify_one(&subject).await;
    let mut redacted = content.clone();
    redact_findings(
        &mut redacted,
        std::slice::from_ref(&verdict),
        &["*".to_string()],
    );
    Ok((verdict, redacted))
}

/// The subject as the verifier's world spells it, with the session's
/// sources when `with_sources`.
fn shown_subject(subject: &Subject<'_>, with_sources: bool) -> verification::Subject {
    let sources = if with_sources { subject.sources } else { &[] };
    verification::Subject {
        stage: match subject.stage {
            VerifierStage::Input => verification::Stage::Input,
            VerifierStage::Output => verification::Stage::Output,
        },
        target_kind: "tool".to_string(),
        target_name: subject.target.to_string(),
        content: subject.content.to_string(),
        tenant: subject.tenant.to_string(),
        session_labels: subject.session_labels.to_vec(),
        contracts: subject.contracts.iter().map(|c| c.to_string()).collect(),
        sources: sources
            .iter()
            .map(|source| verification::Source {
                id: source.id.clone(),
                target_name: source.target.clone(),
                locator: source.locator.clone(),
                digest: source.digest.clone(),
                content: source.content.as_ref().map(|c| c.to_string()),
            })
            .collect(),
    }
}

/// Checks every finding against the content (its pointer names a string,
/// its range lies within it on character boundaries), bounds its text and
/// replaces the matched text by its digest.
fn check_verdict(
    verdict: verification::Verdict,
    content: &Value,
) -> std::result::Result<(Vec<FindingRecord>, Vec<Option<String>>), String> {
    if verdict.findings.len() > FINDINGS_MAX {
        return Err(format!(
            "{} findings; at most {FINDINGS_MAX} are accepted",
            verdict.findings.len()
        ));
    }
    let mut findings = Vec::with_capacity(verdict.findings.len());
    for (index, finding) in verdict.findings.into_iter().enumerate() {
        let at = |why: String| format!("finding {index}: {why}");
        check_token(&finding.kind).map_err(|m| at(format!("kind {m}")))?;
        check_token(&finding.label).map_err(|m| at(format!("label {m}")))?;
        if !(0.0..=1.0).contains(&finding.score) {
            return Err(at("score must be between 0 and 1".into()));
        }
        let (pointer, start, end, matched) = match &finding.location {
            None => (None, None, None, None),
            Some(location) => {
                let value = content
                    .pointer(&location.pointer)
                    .ok_or_else(|| at("its pointer names nothing in the content".into()))?;
                let matched: Cow<'_, str> = match (location.start, location.end, value) {
                    // The whole value, of any type: its JSON text is what matched.
                    (0, 0, Value::String(text)) => Cow::Borrowed(text),
                    (0, 0, value) => Cow::Owned(value.to_string()),
                    (start, end, Value::String(text)) => text
                        .get(start as usize..end as usize)
                        .filter(|m| !m.is_empty())
                        .map(Cow::Borrowed)
                        .ok_or_else(|| {
                            at(format!(
                                "range {start}..{end} is empty or not within the string's {} \
                                 bytes on character boundaries",
                                text.len()
                            ))
                        })?,
                    _ => {
                        return Err(at("a byte range needs its pointer to name a string; \
                             0..0 names the whole value"
                            .into()));
                    }
                };
                (
                    Some(location.pointer.clone()),
                    Some(location.start),
                    Some(location.end),
                    Some(matched),
                )
            }
        };
        findings.push(FindingRecord {
            kind: finding.kind,
            label: finding.label,
            severity: severity_name(finding.severity).to_string(),
            score: (f64::from(finding.score) * 1000.0).round() / 1000.0,
            pointer,
            start,
            end,
            digest: matched.as_ref().map(|m| sha256_hex(m.as_bytes())),
            message: scrubbed_message(&finding.message, matched.as_deref()),
        });
    }
    let mut replacements = vec![None; findings.len()];
    for redaction in verdict.redactions {
        let slot = replacements
            .get_mut(redaction.finding as usize)
            .ok_or_else(|| {
                format!(
                    "a redaction names finding {}, which does not exist",
                    redaction.finding
                )
            })?;
        let replacement = without_controls(&redaction.replacement);
        *slot = Some(crate::bounds::prefix(&replacement, REPLACEMENT_MAX).to_string());
    }
    Ok((findings, replacements))
}

/// Kinds and labels: 1 to 64 characters of `[a-z0-9_.-]`.
fn check_token(token: &str) -> std::result::Result<(), String> {
    let valid = !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{:?} must be 1 to 64 characters of [a-z0-9_.-]",
            crate::bounds::bounded(token, 64)
        ))
    }
}

fn severity_name(severity: verification::Severity) -> &'static str {
    use verification::Severity;
    match severity {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// A finding's message without the text it matched (a verifier must not
/// echo it, and the record keeps only its digest), bounded and without
/// control characters.
fn scrubbed_message(message: &str, matched: Option<&str>) -> String {
    let message = match matched {
        Some(matched) if message.contains(matched) => {
            Cow::Owned(message.replace(matched, "[match]"))
        }
        _ => Cow::Borrowed(message),
    };
    clean_text(&message, MESSAGE_MAX)
}

/// `text` without control characters, cut to at most `max` bytes (saying so).
fn clean_text(text: &str, max: usize) -> String {
    crate::bounds::bounded(&without_controls(text), max).into_owned()
}

fn without_controls(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Replaces, in `document` (the content the verdicts are about), the match
/// of every finding of the verifiers named in `names` (`"*"`: all) with the
/// replacement its verifier proposed, or `[REDACTED:kind]`. Where matches
/// overlap, the later one's replacement covers only what the earlier left,
/// so no part of either survives.
pub fn redact_findings(document: &mut Value, verdicts: &[Verdict], names: &[String]) {
    let mut spans: BTreeMap<&str, Vec<(usize, usize, String)>> = BTreeMap::new();
    for verdict in verdicts {
        let chosen = names
            .iter()
            .any(|n| n == "*" || *n == verdict.record.verifier);
        if !chosen {
            continue;
        }
        for (finding, replacement) in verdict.record.findings.iter().zip(&verdict.replacements) {
            if let (Some(pointer), Some(start), Some(end)) =
                (&finding.pointer, finding.start, finding.end)
            {
                let replacement = replacement
                    .clone()
                    .unwrap_or_else(|| format!("[REDACTED:{}]", finding.kind));
                spans.entry(pointer.as_str()).or_default().push((
                    start as usize,
                    end as usize,
                    replacement,
                ));
            }
        }
    }
    for (pointer, mut spans) in spans {
        let Some(value) = document.pointer_mut(pointer) else {
            continue;
        };
        // A finding on the whole value replaces it, whatever its type.
        if let Some((_, _, replacement)) = spans.iter().find(|(s, e, _)| (*s, *e) == (0, 0)) {
            *value = Value::String(replacement.clone());
            continue;
        }
        let Value::String(text) = value else {
            continue;
        };
        spans.sort_by_key(|(start, end, _)| (*start, std::cmp::Reverse(*end)));
        let mut redacted = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, replacement) in spans {
            if end <= at {
                continue; // inside a span already replaced
            }
            let start = start.max(at);
            let (Some(before), true) = (text.get(at..start), text.is_char_boundary(end)) else {
                continue;
            };
            redacted.push_str(before);
            redacted.push_str(&replacement);
            at = end;
        }
        redacted.push_str(text.get(at..).unwrap_or_default());
        *text = redacted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verdict(findings: Vec<(&str, usize, usize)>, replacements: Vec<Option<&str>>) -> Verdict {
        Verdict {
            record: VerdictRecord {
                stage: "output".into(),
                verifier: "pii".into(),
                sha256: String::new(),
                verdict: "findings".into(),
                advisory: false,
                findings: findings
                    .into_iter()
                    .map(|(pointer, start, end)| FindingRecord {
                        kind: "card".into(),
                        label: "pii".into(),
                        severity: "high".into(),
                        score: 1.0,
                        pointer: Some(pointer.into()),
                        start: Some(start as u32),
                        end: Some(end as u32),
                        digest: None,
                        message: String::new(),
                    })
                    .collect(),
                error: None,
            },
            replacements: replacements
                .into_iter()
                .map(|r| r.map(String::from))
                .collect(),
        }
    }

    #[test]
    fn findings_are_redacted_in_place_and_overlaps_merge() {
        let mut document = json!({"a": "card 4111 and 5500 end", "b": "ééx"});
        let found = verdict(
            vec![("/a", 5, 9), ("/a", 7, 12), ("/a", 14, 18), ("/b", 4, 5)],
            vec![None, Some("X"), Some("****"), None],
        );
        redact_findings(
            &mut document,
            std::slice::from_ref(&found),
            &["pii".to_string()],
        );
        assert_eq!(
            document,
            json!({"a": "card [REDACTED:card]Xd **** end", "b": "éé[REDACTED:card]"})
        );
        let mut untouched = json!({"a": "card 4111"});
        redact_findings(&mut untouched, &[found], &["secrets".to_string()]);
        assert_eq!(untouched, json!({"a": "card 4111"}));
    }

    #[test]
    fn a_finding_outside_the_content_is_a_malformed_verdict() {
        let content = json!({"text": "héllo"});
        let finding = |pointer: &str, start: u32, end: u32| verification::Verdict {
            findings: vec![verification::Finding {
                kind: "k".into(),
                label: "l".into(),
                severity: verification::Severity::High,
                score: 0.5,
                location: Some(verification::Location {
                    pointer: pointer.into(),
                    start,
                    end,
                }),
                message: "found héllo here".into(),
            }],
            redactions: Vec::new(),
        };
        for (pointer, start, end) in [
            ("/nope", 0, 1),
            ("/text", 0, 99),
            ("/text", 2, 3),
            ("/text", 3, 3),
        ] {
            assert!(
                check_verdict(finding(pointer, start, end), &content).is_err(),
                "{pointer} {start}..{end}"
            );
        }
        let (findings, _) = check_verdict(finding("/text", 0, 6), &content).unwrap();
        assert_eq!(findings[0].message, "found [match] here");
        assert_eq!(
            findings[0].digest.as_deref(),
            Some(sha256_hex("héllo".as_bytes()).as_str())
        );
    }
}
