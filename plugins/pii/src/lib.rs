//! `pii`: the built-in verifier for personal data.
//!
//! `verify` walks every string of the subject's JSON content and reports one
//! finding per email address, phone number, payment card, IBAN, IP address or
//! national identifier it finds, each with a redaction in the mode the
//! deployment chose through `WARDEN_PII_REDACTION` (`mask`, `hash` or
//! `placeholder`). Check digits are validated wherever the identifier has
//! one. See the README for what is deliberately not flagged.

pub mod checks;
pub mod detect;
pub mod redact;

pub use detect::{Kind, Level, Match, scan};
pub use redact::{MODE_VARIABLE, Mode, Redactor};

use warden_plugin_sdk::verifier::{
    Finding, Guest, Location, Redaction, Severity, Subject, Verdict, json_strings,
};

/// The label every finding carries.
pub const LABEL: &str = "pii";

fn severity(level: Level) -> Severity {
    match level {
        Level::Info => Severity::Info,
        Level::Low => Severity::Low,
        Level::Medium => Severity::Medium,
        Level::High => Severity::High,
    }
}

/// The finding's message: what was found, never the matched text.
fn message(m: &Match) -> String {
    match m.note {
        Some(note) => format!("{} ({note})", m.kind.describe()),
        None => m.kind.describe().to_string(),
    }
}

/// The verdict on `content` (JSON text) with redactions in `mode`.
pub fn verify_content(content: &str, mode: Mode) -> Result<Verdict, String> {
    let strings = json_strings(content)?;
    let mut redactor = Redactor::new(mode);
    let mut findings = Vec::new();
    let mut redactions = Vec::new();
    for (pointer, text) in &strings {
        for m in scan(text) {
            let offset = |at: usize| {
                u32::try_from(at).map_err(|_| format!("string at `{pointer}` is over 4 GiB"))
            };
            let index = u32::try_from(findings.len()).map_err(|_| "too many findings")?;
            redactions.push(Redaction {
                finding: index,
                replacement: redactor.replacement(m.kind, &text[m.start..m.end]),
            });
            findings.push(Finding {
                kind: m.kind.as_str().to_string(),
                label: LABEL.to_string(),
                severity: severity(m.level),
                score: m.score,
                location: Some(Location {
                    pointer: pointer.clone(),
                    start: offset(m.start)?,
                    end: offset(m.end)?,
                }),
                message: message(&m),
            });
        }
    }
    Ok(Verdict {
        findings,
        redactions,
    })
}

/// The verifier component's export.
pub struct Pii;

impl Guest for Pii {
    fn verify(subject: Subject) -> Result<Verdict, String> {
        // The mode is checked first: a misconfigured deployment fails on every
        // call, not only on the first call that finds something.
        let mode = Mode::from_env()?;
        verify_content(&subject.content, mode)
    }
}

// Exported only in the component: the export names (`warden:plugin/…`) are
// not valid symbol names for a native shared library, and native builds (the
// tests, the throughput example) call `verify_content` directly.
#[cfg(target_arch = "wasm32")]
warden_plugin_sdk::verifier::export_verifier!(Pii);
