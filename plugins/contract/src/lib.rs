//! `contract`: the built-in verifier that checks a call's arguments or
//! output against the contracts declared for it.
//!
//! `subject.contracts` holds each contract as JSON text. [`Contract::parse`]
//! turns one into a compiled JSON Schema and typed [`Rule`]s (any problem is
//! an [`Error`] naming the contract, and the verdict is `error`); then
//! [`verdict`] checks the content against every contract in turn and turns
//! each violation into a [`Finding`] located at the offending value, with a
//! message that names the rule and never the value. Pointers with `*`
//! segments are expanded by [`pointer::Pattern`], values ordered by
//! [`compare`], URLs judged by [`hosts`].

#![deny(missing_docs)]

pub mod compare;
pub mod contract;
pub mod error;
pub mod hosts;
pub mod pointer;
mod schema;

pub use contract::{Contract, Rule};
pub use error::Error;

use compare::Outcome;
use pointer::{Match, Pattern, TooMany};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;
use warden_plugin_sdk::verifier::{Finding, Location, Severity, Verdict};

/// The label every finding carries.
pub const LABEL: &str = "contract";

/// Most findings in one verdict. Past it the verifier stops checking: the
/// verdict already shows the content breaks its contract, and policy needs
/// no more to act on it.
pub const MAX_FINDINGS: usize = 64;

/// What a finding is about: its `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The content fails the contract's JSON Schema.
    SchemaViolation,
    /// A `compare` rule does not hold, or its sides cannot be compared.
    CompareFailed,
    /// A `requires` rule's `then` member is absent.
    MissingRequired,
    /// More than one member of an `exclusive` rule is present.
    ExclusiveViolated,
    /// A `hosts` rule's value is not a URL with an allowed host.
    HostNotAllowed,
    /// A `range` rule's value is not a number within the bounds.
    OutOfRange,
}

impl Kind {
    /// The finding's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SchemaViolation => "schema-violation",
            Kind::CompareFailed => "compare-failed",
            Kind::MissingRequired => "missing-required",
            Kind::ExclusiveViolated => "exclusive-violated",
            Kind::HostNotAllowed => "host-not-allowed",
            Kind::OutOfRange => "out-of-range",
        }
    }
}

/// A contract using every rule kind and the common schema keywords and
/// formats, and a document that breaks most of them: `prepare` checks one
/// against the other so the snapshot every call starts from has the
/// validator's lazily built tables (meta-schemas, format checkers, regexes)
/// ready.
pub const WARM_UP: (&str, &str) = (
    r#"{"schema": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9-]+$", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "when": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "url": {"type": "string", "format": "uri"},
        "host": {"type": "string", "format": "hostname"},
        "ip": {"type": "string", "format": "ipv4"},
        "uuid": {"type": "string", "format": "uuid"},
        "n": {"type": "integer", "minimum": 0, "multipleOf": 1},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true}},
        "additionalProperties": false},
      "rules": [
        {"compare": {"left": "/when", "op": "<=", "right": "/when"}},
        {"requires": {"if": "/email", "then": ["/id"]}},
        {"exclusive": ["/ip", "/host"]},
        {"hosts": {"pointer": "/url", "allowed": ["example.com", "*.example.org", "bücher.example"]}},
        {"range": {"pointer": "/n", "min": 0, "max": 10}}]}"#,
    r#"{"id": "Bad Id", "email": "a@", "when": "2024-05-01T10:00:00Z", "day": "2024-02-30",
        "url": "https://a.example.org/x", "host": "-x-", "ip": "1.2.3", "uuid": "x",
        "n": 11, "tags": ["a", "a", "c"], "extra": 1}"#,
);

/// The verdict on `content` (JSON text) against every contract (JSON text
/// each). Every contract is parsed before the content is looked at, so a
/// malformed contract is an error even when the content is not JSON.
pub fn verdict(content: &str, contracts: &[String]) -> Result<Verdict, Error> {
    let contracts = contracts
        .iter()
        .enumerate()
        .map(|(index, text)| Contract::parse(index, text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut findings = Vec::new();
    if !contracts.is_empty() {
        let document: Value =
            serde_json::from_str(content).map_err(|e| Error::Content(e.to_string()))?;
        let mut out = Findings {
            document: &document,
            findings: &mut findings,
        };
        for (index, contract) in contracts.iter().enumerate() {
            match check(index, contract, &mut out) {
                Ok(()) => {}
                Err(Stop::Full) => break,
                Err(Stop::Error(error)) => return Err(error),
            }
        }
    }
    Ok(Verdict {
        findings,
        redactions: Vec::new(),
    })
}

/// Why checking stopped early.
enum Stop {
    /// [`MAX_FINDINGS`] reached.
    Full,
    /// The content cannot be checked.
    Error(Error),
}

/// Collects findings against one document.
struct Findings<'a> {
    document: &'a Value,
    findings: &'a mut Vec<Finding>,
}

impl Findings<'_> {
    /// Adds a finding about the value at `pointer` (concrete). A string's
    /// range covers the whole string; any other value, or a missing member
    /// reported at its parent, gets the range 0..0, "the whole value".
    fn push(&mut self, kind: Kind, pointer: String, message: String) -> Result<(), Stop> {
        let end = match self.document.pointer(&pointer) {
            Some(Value::String(text)) => u32::try_from(text.len()).unwrap_or(u32::MAX),
            _ => 0,
        };
        self.findings.push(Finding {
            kind: kind.as_str().to_string(),
            label: LABEL.to_string(),
            severity: Severity::High,
            score: 1.0,
            location: Some(Location {
                pointer,
                start: 0,
                end,
            }),
            message,
        });
        if self.findings.len() >= MAX_FINDINGS {
            Err(Stop::Full)
        } else {
            Ok(())
        }
    }
}

/// Present values only: `null` counts as absent for every rule (whether a
/// member may be null is for the schema to say).
fn present(found: Vec<Match<'_>>) -> Vec<Match<'_>> {
    found.into_iter().filter(|m| !m.value.is_null()).collect()
}

fn check(index: usize, contract: &Contract, out: &mut Findings<'_>) -> Result<(), Stop> {
    if let Some(validator) = &contract.schema
        && !validator.is_valid(out.document)
    {
        for error in validator.iter_errors(out.document) {
            let message = format!("contract {index}, schema: {}", schema::describe(&error));
            out.push(
                Kind::SchemaViolation,
                error.instance_path().as_str().to_string(),
                message,
            )?;
        }
    }
    for (number, rule) in contract.rules.iter().enumerate() {
        let find = |pattern: &Pattern| {
            pattern.find(out.document).map(present).map_err(|TooMany| {
                Stop::Error(Error::TooManyMatches {
                    index,
                    rule: number,
                    pointer: pattern.to_string(),
                    limit: pointer::MAX_MATCHES,
                })
            })
        };
        let name = format!("contract {index}, rule {number}");
        match rule {
            Rule::Compare { left, op, right } => {
                let (lefts, rights) = (find(left)?, find(right)?);
                // Pair on the wildcards both sides have: the side with fewer
                // is fully determined by them, so each value of the other
                // side meets at most one.
                let shared = left.wildcards().min(right.wildcards());
                let mut by_binding: HashMap<&[String], Vec<&Match<'_>>> = HashMap::new();
                for r in &rights {
                    by_binding.entry(&r.bindings[..shared]).or_default().push(r);
                }
                for l in &lefts {
                    for r in by_binding.get(&l.bindings[..shared]).into_iter().flatten() {
                        let message = match compare::compare(l.value, *op, r.value) {
                            Outcome::Holds => continue,
                            Outcome::Fails => {
                                format!("{name}: `{left}` must be {} `{right}`", op.as_str())
                            }
                            Outcome::Incomparable => format!(
                                "{name}: `{left}` and `{right}` cannot be compared with {} (not two numbers, dates or date-times)",
                                op.as_str()
                            ),
                        };
                        out.push(Kind::CompareFailed, l.pointer.clone(), message)?;
                    }
                }
            }
            Rule::Requires { when, then } => {
                for found in find(when)? {
                    for required in then {
                        let bound = required.bind(&found.bindings);
                        match out.document.pointer(&bound.to_string()) {
                            Some(value) if !value.is_null() => {}
                            Some(_) => out.push(
                                Kind::MissingRequired,
                                bound.to_string(),
                                format!("{name}: `{required}` is required (not null) when `{when}` is present"),
                            )?,
                            None => out.push(
                                Kind::MissingRequired,
                                bound.deepest_existing(out.document),
                                format!("{name}: `{required}` is required when `{when}` is present"),
                            )?,
                        }
                    }
                }
            }
            Rule::Exclusive(all) => {
                // Per binding, the patterns present there, in rule order.
                let mut seen: HashMap<Vec<String>, Vec<(usize, String)>> = HashMap::new();
                let mut order = Vec::new();
                for (i, pattern) in all.iter().enumerate() {
                    for found in find(pattern)? {
                        let slot = seen.entry(found.bindings.clone()).or_insert_with(|| {
                            order.push(found.bindings.clone());
                            Vec::new()
                        });
                        slot.push((i, found.pointer));
                    }
                }
                let list: Vec<String> = all.iter().map(|p| format!("`{p}`")).collect();
                for binding in order {
                    let present = seen.remove(&binding).unwrap_or_default();
                    if let [(first, _), (second, pointer), ..] = present.as_slice() {
                        let message = format!(
                            "{name}: at most one of {} may be present; `{}` and `{}` are",
                            list.join(", "),
                            all[*first],
                            all[*second]
                        );
                        out.push(Kind::ExclusiveViolated, pointer.clone(), message)?;
                    }
                }
            }
            Rule::Hosts { pointer, allowed } => {
                for found in find(pointer)? {
                    let outcome = match found.value {
                        Value::String(url) => allowed.check(url),
                        _ => Err(hosts::Refusal::NotString),
                    };
                    if let Err(refusal) = outcome {
                        let message = format!("{name} (hosts at `{pointer}`): {refusal}");
                        out.push(Kind::HostNotAllowed, found.pointer, message)?;
                    }
                }
            }
            Rule::Range { pointer, min, max } => {
                for found in find(pointer)? {
                    let inside = match found.value {
                        Value::Number(n) => {
                            min.as_ref()
                                .is_none_or(|min| compare::numbers(n, min) != Ordering::Less)
                                && max
                                    .as_ref()
                                    .is_none_or(|max| compare::numbers(n, max) != Ordering::Greater)
                        }
                        _ => {
                            let message = format!("{name}: `{pointer}` must be a number");
                            out.push(Kind::OutOfRange, found.pointer, message)?;
                            continue;
                        }
                    };
                    if !inside {
                        let bounds = match (min, max) {
                            (Some(min), Some(max)) => format!("between {min} and {max}"),
                            (Some(min), None) => format!(">= {min}"),
                            (None, Some(max)) => format!("<= {max}"),
                            (None, None) => String::new(),
                        };
                        let message = format!("{name}: `{pointer}` must be {bounds}");
                        out.push(Kind::OutOfRange, found.pointer, message)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The component's export. Only on wasm: the export's symbol names do not
/// link into a native shared library, and native builds serve the tests and
/// the benchmark.
#[cfg(target_arch = "wasm32")]
mod component {
    use warden_plugin_sdk::verifier::{Guest, Subject, Verdict};

    struct ContractVerifier;

    impl Guest for ContractVerifier {
        /// Checks a sample of every rule kind and schema keyword family, so
        /// the validator's lazily built tables are in the snapshot.
        fn prepare() {
            let (contract, content) = crate::WARM_UP;
            let _ = crate::verdict(content, &[contract.to_string()]);
        }

        fn verify(subject: Subject) -> Result<Verdict, String> {
            crate::verdict(&subject.content, &subject.contracts).map_err(|e| e.to_string())
        }
    }

    warden_plugin_sdk::verifier::export_verifier!(ContractVerifier);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_sample_gives_findings_not_an_error() {
        let (contract, content) = WARM_UP;
        let verdict = verdict(content, &[contract.to_string()]).unwrap();
        let kinds: std::collections::BTreeSet<&str> =
            verdict.findings.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["exclusive-violated", "out-of-range", "schema-violation"]
        );
        assert!(verdict.findings.len() > 8, "{:?}", verdict.findings);
    }

    #[test]
    fn schema_compile_errors_say_what_is_wrong() {
        for (schema, expected) in [
            (r#"{"type": "integr"}"#, "at `/type`: "),
            (
                r#"{"properties": {"a": {"minimum": "1"}}}"#,
                "at `/properties/a/minimum`: ",
            ),
            (
                r#"{"$ref": "https://example.com/s.json"}"#,
                "https://example.com/s.json",
            ),
            (r#"{"pattern": "(unclosed"}"#, "(unclosed"),
        ] {
            let contract = format!(r#"{{"schema": {schema}}}"#);
            let error = Contract::parse(3, &contract).unwrap_err().to_string();
            assert!(
                error.starts_with("contract 3: /schema does not compile: "),
                "{error}"
            );
            assert!(error.contains(expected), "{error}");
        }
    }
}
