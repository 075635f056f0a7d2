//! `hostile-verifier`: a test fixture. The last string in the content is a
//! command: `clean`, `find:WORD` (an honest finding of WORD in that string),
//! or a way to misbehave: `trap`, `spin`, `fail`, `leak`, `outside`,
//! `boundary`, `flood`, `bad-kind`, `bad-score`, `bad-redaction`,
//! `huge-replacement`, `reach` (tries the filesystem and the environment and
//! reports what it got beyond its grant), `subject` (reports the tenant and
//! session labels). Its `prepare` traps or spins when the granted
//! `HOSTILE_PREPARE` says `trap` or `spin`.

use warden_plugin_sdk::verifier::{
    Finding, Guest, Location, Redaction, Severity, Subject, Verdict, json_strings,
};

struct Hostile;

fn finding(kind: &str, pointer: &str, start: u32, end: u32, message: String) -> Finding {
    Finding {
        kind: kind.to_string(),
        label: "test".to_string(),
        severity: Severity::High,
        score: 0.9,
        location: Some(Location {
            pointer: pointer.to_string(),
            start,
            end,
        }),
        message,
    }
}

fn verdict(findings: Vec<Finding>) -> Verdict {
    Verdict {
        findings,
        redactions: Vec::new(),
    }
}

impl Guest for Hostile {
    /// Misbehaves at load when `HOSTILE_PREPARE` says so: `trap` or `spin`.
    fn prepare() {
        match std::env::var("HOSTILE_PREPARE").as_deref() {
            Ok("trap") => panic!("hostile verifier trapped in prepare"),
            Ok("spin") =>
            {
                #[allow(clippy::empty_loop, reason = "spinning is the point")]
                loop {}
            }
            _ => {}
        }
    }

    fn verify(subject: Subject) -> Result<Verdict, String> {
        let strings = json_strings(&subject.content)?;
        let Some((pointer, text)) = strings.last() else {
            return Ok(verdict(Vec::new()));
        };
        let len = text.len() as u32;
        let whole = |kind: &str, message: String| finding(kind, pointer, 0, len, message);
        Ok(match text.as_str() {
            "clean" => verdict(Vec::new()),
            "trap" => panic!("hostile verifier trapped on purpose"),
            "spin" =>
            {
                #[allow(clippy::empty_loop, reason = "spinning is the point")]
                loop {}
            }
            "fail" => return Err("the verifier refuses on purpose".into()),
            "leak" => verdict(vec![whole("leak", format!("the secret is {text}!"))]),
            "outside" => verdict(vec![finding(
                "outside",
                pointer,
                0,
                len + 10,
                String::new(),
            )]),
            "bad-kind" => verdict(vec![whole("Bad Kind!", String::new())]),
            "bad-score" => verdict(vec![Finding {
                score: f32::NAN,
                ..whole("bad-score", String::new())
            }]),
            "flood" => verdict((0..5000).map(|_| whole("flood", String::new())).collect()),
            "bad-redaction" => Verdict {
                findings: vec![whole("bad-redaction", String::new())],
                redactions: vec![Redaction {
                    finding: 7,
                    replacement: "x".into(),
                }],
            },
            "huge-replacement" => Verdict {
                findings: vec![whole("huge-replacement", String::new())],
                redactions: vec![Redaction {
                    finding: 0,
                    replacement: "R".repeat(10_000),
                }],
            },
            "reach" => {
                let mut reached = Vec::new();
                for path in ["/", "/etc/passwd", ".", "/tmp"] {
                    if std::fs::read_dir(path).is_ok() || std::fs::read(path).is_ok() {
                        reached.push(format!("file {path}"));
                    }
                }
                reached.extend(
                    std::env::vars()
                        .filter(|(name, _)| name != "HOSTILE_PREPARE")
                        .map(|(name, _)| format!("env {name}")),
                );
                let kind = if reached.is_empty() {
                    "held"
                } else {
                    "escaped"
                };
                verdict(vec![whole(kind, reached.join(", "))])
            }
            "subject" => verdict(vec![whole(
                "subject",
                format!(
                    "tenant={} labels={} target={} sources={} contracts={}",
                    subject.tenant,
                    subject.session_labels.join("+"),
                    subject.target_name,
                    subject.sources.len(),
                    subject.contracts.len()
                ),
            )]),
            other => match other.strip_prefix("find:") {
                Some(word) => {
                    let at = text.rfind(word).unwrap_or(0) as u32;
                    Verdict {
                        findings: vec![finding(
                            "word",
                            pointer,
                            at,
                            at + word.len() as u32,
                            "found the word".into(),
                        )],
                        redactions: vec![Redaction {
                            finding: 0,
                            replacement: "[WORD]".into(),
                        }],
                    }
                }
                None => verdict(Vec::new()),
            },
        })
    }
}

warden_plugin_sdk::verifier::export_verifier!(Hostile);
