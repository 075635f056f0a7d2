//! `secrets`: the built-in verifier that finds credentials and keys in a
//! call's arguments or output.
//!
//! Every string of the JSON content is scanned: an Aho-Corasick prefilter
//! finds which rules' keywords occur, and only those rules' regexes run
//! (ASCII mode, compiled once per instance). Each match becomes a finding
//! with the rule's id as its kind and a redaction `[REDACTED:<kind>]`.
//!
//! Keys of JSON objects are not scanned as text, but the name a string sits
//! under counts as its context: `{"api_key": "..."}` is scanned as if it
//! read `"api_key": "..."`, so rules that need a name (`password = ...`)
//! still see one.

pub mod checks;
pub mod engine;
pub mod rules;
pub mod testkit;

use engine::{Match, scanner};
use rules::{Rule, Severity, Tier};
use warden_plugin_sdk::verifier::{self, Finding, Location, Redaction, Verdict};

/// Text scanned once in `prepare`, touching the common keywords, so the
/// regexes' lazy caches are warm in the snapshot every call starts from.
pub const WARM_UP: &str = r#"{"text": "export API_KEY=abc; password: hunter; token=xyz; secret key aws github slack stripe postgres://user@host/db Bearer eyJ"}"#;

/// Strings longer than this are not rescanned under their field name: a
/// value that is one secret is short.
const MAX_NAMED_VALUE: usize = 8 * 1024;

/// The context name of a string at `pointer`: its last two non-numeric
/// reference tokens joined by `_` (`/twilio/auth_token` → `twilio_auth_token`).
pub fn field_name(pointer: &str) -> Option<String> {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .filter(|t| !t.is_empty() && !t.bytes().all(|b| b.is_ascii_digit()))
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let tail = &tokens[tokens.len().saturating_sub(2)..];
    (!tail.is_empty()).then(|| tail.join("_"))
}

/// Scans one string that sits under `name` (if any).
pub fn scan_field(name: Option<&str>, text: &str) -> Vec<Match> {
    let scanner = scanner();
    let mut found = scanner.scan(text);
    if let Some(name) = name
        && text.len() <= MAX_NAMED_VALUE
    {
        let named: Vec<usize> = scanner
            .candidates(name.as_bytes())
            .into_iter()
            .filter(|&i| scanner.rules()[i].tier != Tier::Format)
            .collect();
        if !named.is_empty() {
            let prefix = format!("{name}: \"");
            let synthetic = format!("{prefix}{text}\"");
            let offset = prefix.len();
            for index in named {
                for m in scanner.scan_rule(index, &synthetic) {
                    if m.start >= offset && m.end <= offset + text.len() {
                        found.push(Match {
                            start: m.start - offset,
                            end: m.end - offset,
                            ..m
                        });
                    }
                }
            }
            found = engine::resolve_overlaps(found);
        }
    }
    found
}

/// Scans every string and every object key of a JSON document:
/// `(pointer, match, message)`, the pointer `None` for a match in a key.
pub fn scan_json(content: &str) -> Result<Vec<(Option<String>, Match, String)>, String> {
    let text = verifier::json_text(content)?;
    let mut out = Vec::new();
    for (pointer, value) in text.strings {
        let name = field_name(&pointer);
        for m in scan_field(name.as_deref(), &value) {
            let message = message(m.rule, &value[m.start..m.end]);
            out.push((Some(pointer.clone()), m, message));
        }
    }
    for key in text.keys {
        for m in scan_field(None, &key) {
            let message = format!("{} in an object key", message(m.rule, &key[m.start..m.end]));
            out.push((None, m, message));
        }
    }
    Ok(out)
}

/// The finding's message: the rule's title and id and the secret's length.
/// It never repeats the secret, even one that happens to be a word of the
/// title.
fn message(rule: &Rule, secret: &str) -> String {
    let message = format!("{} (rule {}, {} bytes)", rule.title, rule.id, secret.len());
    if message.contains(secret) {
        format!("secret found ({} bytes)", secret.len())
    } else {
        message
    }
}

fn severity(severity: Severity) -> verifier::Severity {
    match severity {
        Severity::Info => verifier::Severity::Info,
        Severity::Low => verifier::Severity::Low,
        Severity::Medium => verifier::Severity::Medium,
        Severity::High => verifier::Severity::High,
        Severity::Critical => verifier::Severity::Critical,
    }
}

fn score(tier: Tier) -> f32 {
    match tier {
        Tier::Format => 0.95,
        Tier::Keyed => 0.8,
        Tier::Generic => 0.6,
    }
}

/// The verdict for `content`: one finding and one redaction per match.
pub fn verdict(content: &str) -> Result<Verdict, String> {
    let matches = scan_json(content)?;
    let mut findings = Vec::with_capacity(matches.len());
    let mut redactions = Vec::with_capacity(matches.len());
    for (index, (pointer, m, message)) in matches.into_iter().enumerate() {
        let rule = m.rule;
        findings.push(Finding {
            kind: rule.id.to_string(),
            label: "secret".to_string(),
            severity: severity(rule.severity),
            score: score(rule.tier),
            location: pointer.as_ref().map(|pointer| Location {
                pointer: pointer.clone(),
                start: m.start as u32,
                end: m.end as u32,
            }),
            message,
        });
        // A key cannot be replaced in place: policy denies on it instead.
        if pointer.is_some() {
            redactions.push(Redaction {
                finding: index as u32,
                replacement: format!("[REDACTED:{}]", rule.id),
            });
        }
    }
    Ok(Verdict {
        findings,
        redactions,
    })
}

/// The component's export. Only on wasm: the export's symbol names do not
/// link into a native shared library, and native builds serve the tests,
/// the evaluation and the benchmark.
#[cfg(target_arch = "wasm32")]
mod component {
    use super::verdict;
    use warden_plugin_sdk::verifier::{Guest, Subject, Verdict};

    struct Secrets;

    impl Guest for Secrets {
        /// Compiles every rule and warms the regexes' caches on a sample,
        /// so the host's snapshot starts each call with both done.
        fn prepare() {
            let _ = crate::engine::scanner().compile_all();
            let _ = verdict(crate::WARM_UP);
        }

        fn verify(subject: Subject) -> Result<Verdict, String> {
            verdict(&subject.content)
        }
    }

    warden_plugin_sdk::verifier::export_verifier!(Secrets);
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::{Rng, expand};

    #[test]
    fn a_credential_in_an_object_key_is_found_without_a_location() {
        let key = concat!("AKIA", "QZ7RMWT2KX4NB6PD");
        for content in [
            format!(r#"{{"{key}": 1}}"#),
            format!(r#"{{"notes": [{{"{key}": "x"}}]}}"#),
        ] {
            let verdict = verdict(&content).unwrap();
            assert_eq!(verdict.findings.len(), 1, "{content}");
            let finding = &verdict.findings[0];
            assert!(finding.location.is_none());
            assert!(finding.message.ends_with("in an object key"));
            assert!(!finding.message.contains(key));
            assert!(
                verdict.redactions.is_empty(),
                "a key is not replaced in place"
            );
        }
    }

    #[test]
    fn field_names_come_from_the_pointer() {
        assert_eq!(
            field_name("/twilio/auth_token").as_deref(),
            Some("twilio_auth_token")
        );
        assert_eq!(field_name("/a/b/c").as_deref(), Some("b_c"));
        assert_eq!(field_name("/keys/0").as_deref(), Some("keys"));
        assert_eq!(field_name("/a~1b").as_deref(), Some("a/b"));
        assert_eq!(field_name(""), None);
    }

    #[test]
    fn verdict_locates_and_redacts_without_repeating_the_secret() {
        let (token, _) = expand("ghp_[[a36]]", &mut Rng::new(7));
        let (password, _) = expand("[[a12]]9", &mut Rng::new(8));
        let content = format!(
            r#"{{"cmd": "git push https://{token}@github.com/o/r", "db": {{"password": "{password}"}}, "n": 1}}"#
        );
        let verdict = verdict(&content).unwrap();
        assert_eq!(verdict.findings.len(), 2, "{:?}", verdict.findings);
        let github = &verdict.findings[0];
        assert_eq!(github.kind, "github-pat");
        assert_eq!(github.label, "secret");
        let location = github.location.as_ref().unwrap();
        assert_eq!(location.pointer, "/cmd");
        let cmd = format!("git push https://{token}@github.com/o/r");
        assert_eq!(&cmd[location.start as usize..location.end as usize], token);
        let db = &verdict.findings[1];
        assert_eq!(db.kind, "password-assignment");
        let location = db.location.as_ref().unwrap();
        assert_eq!(
            (location.pointer.as_str(), location.start, location.end),
            ("/db/password", 0, password.len() as u32)
        );
        for finding in &verdict.findings {
            assert!(!finding.message.contains(&token) && !finding.message.contains(&password));
        }
        assert_eq!(verdict.redactions.len(), 2);
        assert_eq!(verdict.redactions[0].finding, 0);
        assert_eq!(verdict.redactions[0].replacement, "[REDACTED:github-pat]");
        assert_eq!(
            verdict.redactions[1].replacement,
            "[REDACTED:password-assignment]"
        );
    }

    #[test]
    fn the_most_specific_rule_wins_an_overlap() {
        let (key, _) = expand("AKIA[[B16]]", &mut Rng::new(3));
        let content = format!(r#"{{"api_key": "{key}", "env": "AWS_API_KEY={key}"}}"#);
        let verdict = verdict(&content).unwrap();
        let kinds: Vec<&str> = verdict.findings.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(kinds, ["aws-access-key-id", "aws-access-key-id"]);
    }

    #[test]
    fn structured_arguments_give_their_names_as_context() {
        let (hex, _) = expand("[[h32]]", &mut Rng::new(5));
        let (body, _) = expand("MIIE[[b60]]\\n[[b64]]\\n[[b64]]", &mut Rng::new(6));
        let key = format!("-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----");
        let content = format!(
            r#"{{"twilio": {{"auth_token": "{hex}"}}, "sa": {{"private_key": "{key}\\n"}}, "notes": "{hex}"}}"#
        );
        let verdict = verdict(&content).unwrap();
        let found: Vec<(&str, &str, u32, u32)> = verdict
            .findings
            .iter()
            .map(|f| {
                let l = f.location.as_ref().unwrap();
                (f.kind.as_str(), l.pointer.as_str(), l.start, l.end)
            })
            .collect();
        // The PEM block is decoded from JSON: its range is in the decoded string.
        let decoded_key_len = key.replace("\\n", "\n").len() as u32;
        assert_eq!(
            found,
            [
                ("private-key", "/sa/private_key", 0, decoded_key_len),
                ("twilio-auth-token", "/twilio/auth_token", 0, 32),
            ]
        );
    }

    #[test]
    fn messages_never_repeat_the_secret() {
        let rule = rules::RULES.iter().find(|r| r.id == "github-pat").unwrap();
        assert_eq!(
            message(rule, "ghp_x"),
            "GitHub personal access token (rule github-pat, 5 bytes)"
        );
        assert_eq!(message(rule, "GitHub"), "secret found (6 bytes)");
    }

    /// Random text built from keywords, secrets, quotes, separators and
    /// multi-byte characters: no panic, and every finding's range lies in
    /// its string on character boundaries and holds a non-empty value.
    #[test]
    fn random_text_gives_well_formed_findings() {
        const PARTS: &[&str] = &[
            "api_key=",
            "password: ",
            "token ",
            "Bearer ",
            "-----BEGIN RSA PRIVATE KEY-----\n",
            "postgres://u:",
            "@h/",
            "ghp_[[a36]]",
            "AKIA[[B16]]",
            "[[b40]]",
            "[[h32]]",
            "[[uuid]]",
            "é",
            "€",
            "😀",
            "\"",
            "'",
            " ",
            "\n",
            ";",
            "=",
            ":",
            "\\",
            "sk_live_[[a24]]",
            "eyJhbGciOiJIUzI1NiJ9.eyJ[[u20]].[[u20]]",
            "secret",
            "«",
            "ß[[a12]]",
            "%3D",
        ];
        let mut rng = Rng::new(11);
        let mut total = 0;
        for _ in 0..400 {
            let mut text = String::new();
            for _ in 0..rng.below(40) {
                let part = *rng.pick(PARTS);
                text.push_str(&expand(part, &mut rng).0);
            }
            let content =
                serde_json::json!({ "a": text, "password": text, "x": [text] }).to_string();
            let verdict = verdict(&content).unwrap();
            total += verdict.findings.len();
            assert_eq!(verdict.findings.len(), verdict.redactions.len());
            for (index, finding) in verdict.findings.iter().enumerate() {
                let location = finding.location.as_ref().unwrap();
                let (start, end) = (location.start as usize, location.end as usize);
                assert!(start < end && end <= text.len(), "{finding:?} in {text:?}");
                assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
                assert!(!finding.message.contains(&text[start..end]));
                assert_eq!(verdict.redactions[index].finding, index as u32);
            }
        }
        assert!(total > 1000, "the text should hold many secrets: {total}");
    }

    #[test]
    fn non_json_content_is_an_error() {
        assert!(verdict("not json {").is_err());
        assert!(verdict(r#""just a string""#).unwrap().findings.is_empty());
    }

    #[test]
    fn ranges_are_character_boundaries_in_unicode_text() {
        let (token, _) = expand("glpat-[[a20]]", &mut Rng::new(4));
        let text = format!("clé: «{token}» — ok");
        let content = serde_json::to_string(&text).unwrap();
        let verdict = verdict(&content).unwrap();
        let location = verdict.findings[0].location.as_ref().unwrap();
        assert_eq!(&text[location.start as usize..location.end as usize], token);
    }
}
