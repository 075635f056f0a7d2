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
    Finding, Guest, JsonText, Location, Redaction, Severity, Subject, Verdict, json_text,
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
    let JsonText { strings, keys } = json_text(content)?;
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
    // A key cannot be replaced in place: its findings carry no location and
    // no redaction (the default bundle refuses such an output).
    for key in &keys {
        for m in scan(key) {
            findings.push(Finding {
                kind: m.kind.as_str().to_string(),
                label: LABEL.to_string(),
                severity: severity(m.level),
                score: m.score,
                location: None,
                message: format!("{} in an object key", message(&m)),
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
    /// Compiles the patterns and warms their caches on a sample, so the
    /// host's snapshot starts each call with both done.
    fn prepare() {
        let _ = verify_content(
            r#"{"text": "mail a.b@example.com or call +44 20 7946 0958, card 4539 1488 0343 6467, IBAN GB82 WEST 1234 5698 7654 32, ip 81.2.69.160"}"#,
            Mode::Mask,
        );
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_in_an_object_key_is_found_without_a_location() {
        let content = r#"{"contacts": {"jane.doe@example.com": "VIP"}}"#;
        let verdict = verify_content(content, Mode::Mask).unwrap();
        assert_eq!(verdict.findings.len(), 1);
        let finding = &verdict.findings[0];
        assert_eq!(finding.kind, "email");
        assert!(finding.location.is_none());
        assert!(!finding.message.contains("jane"));
        assert!(verdict.redactions.is_empty());
    }

    fn replacements(verdict: &Verdict) -> Vec<&str> {
        verdict
            .redactions
            .iter()
            .map(|r| r.replacement.as_str())
            .collect()
    }

    #[test]
    fn byte_ranges_count_utf8_bytes_before_the_match() {
        let content = r#"{"note":"Grüße an Zoë 😀 — jane@example.com","n":1}"#;
        let verdict = verify_content(content, Mode::Mask).unwrap();
        assert_eq!(verdict.findings.len(), 1);
        let finding = &verdict.findings[0];
        let location = finding.location.as_ref().unwrap();
        assert_eq!(location.pointer, "/note");
        let text = "Grüße an Zoë 😀 — jane@example.com";
        let (start, end) = (location.start as usize, location.end as usize);
        assert_eq!(&text[start..end], "jane@example.com");
        // 15 one-byte characters; ü, ß, ë: 2 bytes each; 😀: 4; —: 3.
        assert_eq!(start, "Grüße an Zoë 😀 — ".len());
        assert_eq!(start, 25);
        assert_eq!(finding.kind, "email");
        assert_eq!(finding.label, "pii");
    }

    #[test]
    fn every_string_is_walked_with_its_pointer() {
        let content = r#"{"a":["x","call +44 20 7946 0958"],"b":{"c/d":"DE89 3704 0044 0532 0130 00"},"k@example.com":3}"#;
        let verdict = verify_content(content, Mode::Mask).unwrap();
        let got: Vec<(&str, Option<&str>)> = verdict
            .findings
            .iter()
            .map(|f| {
                (
                    f.kind.as_str(),
                    f.location.as_ref().map(|l| l.pointer.as_str()),
                )
            })
            .collect();
        // The key's address comes last, without a location.
        assert_eq!(
            got,
            [
                ("phone", Some("/a/1")),
                ("iban", Some("/b/c~1d")),
                ("email", None)
            ]
        );
        assert_eq!(
            replacements(&verdict),
            ["+** ** **** 0958", "**** **** **** **** **30 00"]
        );
        let top = verify_content(r#""81.2.69.160""#, Mode::Mask).unwrap();
        assert_eq!(top.findings[0].location.as_ref().unwrap().pointer, "");
    }

    #[test]
    fn messages_never_repeat_the_match() {
        let text = "jane@example.com; +44 20 7946 0958; 4539148803436467; 4111111111111111; \
                    DE89370400440532013000; 81.2.69.160; 536-22-1234; AB123456C; 12345678Z; \
                    RSSMRA85T10A562S; 255081416802538; 811218-9876; 86 095 742 719; 2341 2341 2346";
        let content = serde_json::to_string(text).unwrap();
        let verdict = verify_content(&content, Mode::Mask).unwrap();
        assert_eq!(verdict.findings.len(), 14);
        for f in &verdict.findings {
            let l = f.location.as_ref().unwrap();
            let matched = &text[l.start as usize..l.end as usize];
            assert!(!f.message.contains(matched), "{}", f.message);
            let digits: String = matched.chars().filter(char::is_ascii_digit).collect();
            assert!(digits.len() < 4 || !f.message.contains(&digits[digits.len() - 4..]));
            assert!(Kind::parse(&f.kind).is_some());
        }
        // One redaction per finding, in order.
        let indices: Vec<u32> = verdict.redactions.iter().map(|r| r.finding).collect();
        assert_eq!(indices, (0..14).collect::<Vec<u32>>());
    }

    #[test]
    fn placeholders_hold_across_the_strings_of_one_verdict() {
        let content = r#"["a@example.com wrote to b@example.com", {"cc": "A@example.com"}, "+44 20 7946 0958"]"#;
        let verdict = verify_content(content, Mode::Placeholder).unwrap();
        assert_eq!(
            replacements(&verdict),
            ["<EMAIL_1>", "<EMAIL_2>", "<EMAIL_1>", "<PHONE_1>"]
        );
        // A new verdict numbers afresh.
        let again = verify_content(r#""b@example.com""#, Mode::Placeholder).unwrap();
        assert_eq!(replacements(&again), ["<EMAIL_1>"]);
    }

    #[test]
    fn hash_mode_replacements() {
        let verdict = verify_content(r#""jane@example.com""#, Mode::Hash).unwrap();
        assert_eq!(replacements(&verdict), ["<email:8c87b489ce35>"]);
    }

    #[test]
    fn content_that_is_not_json_is_an_error() {
        let err = verify_content("jane@example.com", Mode::Mask).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        assert!(!err.contains("jane@example.com"), "{err}");
    }

    #[test]
    fn nothing_found_is_an_empty_verdict() {
        let verdict = verify_content(
            r#"{"q":"weather in Paris","n":4111111111111111}"#,
            Mode::Mask,
        )
        .unwrap();
        assert!(verdict.findings.is_empty() && verdict.redactions.is_empty());
    }
}
