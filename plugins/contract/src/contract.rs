//! A contract as JSON text → a checked, typed [`Contract`]: pointers
//! parsed, operators and hosts normalized, the schema compiled. Everything
//! that can be wrong with a contract is found here, so checking content
//! never meets a malformed rule.

use crate::compare::Op;
use crate::error::Error;
use crate::hosts::Allowed;
use crate::pointer::Pattern;
use jsonschema::Validator;
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// A contract ready to check content.
#[derive(Debug)]
pub struct Contract {
    /// The compiled `schema`, if the contract has one.
    pub schema: Option<Validator>,
    /// The `rules`, in order.
    pub rules: Vec<Rule>,
}

/// One rule of a contract.
#[derive(Debug)]
pub enum Rule {
    /// `left op right`, pairwise over aligned wildcards.
    Compare {
        /// The left side.
        left: Pattern,
        /// The operator.
        op: Op,
        /// The right side.
        right: Pattern,
    },
    /// Where `when` is present, every `then` pointer must be.
    Requires {
        /// The `if` pointer.
        when: Pattern,
        /// The `then` pointers; none has more wildcards than `when`.
        then: Vec<Pattern>,
    },
    /// At most one of these may be present; all have as many wildcards.
    Exclusive(Vec<Pattern>),
    /// Every value must be a URL whose host is allowed.
    Hosts {
        /// Where the URLs are.
        pointer: Pattern,
        /// The allowed hosts.
        allowed: Allowed,
    },
    /// Every value must be a number within the bounds (inclusive).
    Range {
        /// Where the numbers are.
        pointer: Pattern,
        /// The least allowed value.
        min: Option<Number>,
        /// The greatest allowed value.
        max: Option<Number>,
    },
}

/// The rule kinds, as written in a contract.
pub const RULE_KINDS: [&str; 5] = ["compare", "requires", "exclusive", "hosts", "range"];

impl Contract {
    /// Parses contract number `index` of a subject.
    pub fn parse(index: usize, text: &str) -> Result<Contract, Error> {
        let document: Value = serde_json::from_str(text).map_err(|e| Error::NotJson {
            index,
            reason: e.to_string(),
        })?;
        let at = Parser { index };
        let top = at.object(&document, "")?;
        at.only(top, "", &["schema", "rules"])?;
        if top.is_empty() {
            return Err(at.fail("", "a contract needs `schema`, `rules` or both"));
        }
        let schema = match top.get("schema") {
            None => None,
            Some(schema @ (Value::Object(_) | Value::Bool(_))) => Some(compile(index, schema)?),
            Some(_) => {
                return Err(at.fail("/schema", "must be a JSON Schema (an object or a boolean)"));
            }
        };
        let rules = match top.get("rules") {
            None => Vec::new(),
            Some(Value::Array(rules)) => rules
                .iter()
                .enumerate()
                .map(|(i, rule)| at.rule(rule, &format!("/rules/{i}")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(at.fail("/rules", "must be an array of rules")),
        };
        Ok(Contract { schema, rules })
    }
}

/// Compiles a schema as draft 2020-12, with `format` asserted and every
/// external reference refused: a schema must be self-contained, and a
/// verifier has no network or files to fetch one from.
fn compile(index: usize, schema: &Value) -> Result<Validator, Error> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .offline()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| Error::Schema {
            index,
            reason: match e.instance_path().as_str() {
                "" => e.to_string(),
                at => format!("at `{at}`: {e}"),
            },
        })
}

/// Builds [`Error::Format`]s for contract number `index`.
struct Parser {
    index: usize,
}

impl Parser {
    fn fail(&self, at: &str, problem: impl Into<String>) -> Error {
        Error::Format {
            index: self.index,
            at: if at.is_empty() {
                "contract".to_string()
            } else {
                at.to_string()
            },
            problem: problem.into(),
        }
    }

    fn object<'v>(&self, value: &'v Value, at: &str) -> Result<&'v Map<String, Value>, Error> {
        value
            .as_object()
            .ok_or_else(|| self.fail(at, "must be an object"))
    }

    /// Refuses members other than `allowed`.
    fn only(&self, object: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), Error> {
        match object.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(self.fail(
                at,
                format!("unknown member `{key}` (expected {})", quoted(allowed)),
            )),
            None => Ok(()),
        }
    }

    fn required<'v>(
        &self,
        object: &'v Map<String, Value>,
        at: &str,
        name: &str,
    ) -> Result<&'v Value, Error> {
        object
            .get(name)
            .ok_or_else(|| self.fail(at, format!("missing member `{name}`")))
    }

    fn pointer(&self, value: &Value, at: &str) -> Result<Pattern, Error> {
        let text = value
            .as_str()
            .ok_or_else(|| self.fail(at, "must be a JSON Pointer string"))?;
        Pattern::parse(text).map_err(|problem| self.fail(at, problem))
    }

    fn pointers(&self, value: &Value, at: &str, least: usize) -> Result<Vec<Pattern>, Error> {
        let items = value
            .as_array()
            .ok_or_else(|| self.fail(at, "must be an array of JSON Pointers"))?;
        if items.len() < least {
            return Err(self.fail(at, format!("must list at least {least} pointers")));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.pointer(item, &format!("{at}/{i}")))
            .collect()
    }

    fn bound(
        &self,
        object: &Map<String, Value>,
        at: &str,
        name: &str,
    ) -> Result<Option<Number>, Error> {
        match object.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n.clone())),
            Some(_) => Err(self.fail(&format!("{at}/{name}"), "must be a number")),
        }
    }

    fn rule(&self, value: &Value, at: &str) -> Result<Rule, Error> {
        let object = self.object(value, at)?;
        let mut members = object.iter();
        let (Some((kind, body)), None) = (members.next(), members.next()) else {
            return Err(self.fail(
                at,
                format!(
                    "a rule is an object with exactly one member, one of {}",
                    quoted(&RULE_KINDS)
                ),
            ));
        };
        let at = format!("{at}/{}", crate::pointer::escape(kind));
        let at = at.as_str();
        match kind.as_str() {
            "compare" => {
                let body = self.object(body, at)?;
                self.only(body, at, &["left", "op", "right"])?;
                let op = self.required(body, at, "op")?;
                let op = op.as_str().and_then(Op::parse).ok_or_else(|| {
                    let all: Vec<&str> = Op::ALL.iter().map(|(t, _)| *t).collect();
                    self.fail(
                        &format!("{at}/op"),
                        format!("must be one of {}", quoted(&all)),
                    )
                })?;
                Ok(Rule::Compare {
                    left: self.pointer(self.required(body, at, "left")?, &format!("{at}/left"))?,
                    op,
                    right: self
                        .pointer(self.required(body, at, "right")?, &format!("{at}/right"))?,
                })
            }
            "requires" => {
                let body = self.object(body, at)?;
                self.only(body, at, &["if", "then"])?;
                let when = self.pointer(self.required(body, at, "if")?, &format!("{at}/if"))?;
                let then =
                    self.pointers(self.required(body, at, "then")?, &format!("{at}/then"), 1)?;
                if let Some(i) = then.iter().position(|p| p.wildcards() > when.wildcards()) {
                    return Err(self.fail(
                        &format!("{at}/then/{i}"),
                        "has more `*` segments than `if`: each `*` takes the element `if` matched",
                    ));
                }
                Ok(Rule::Requires { when, then })
            }
            "exclusive" => {
                let all = self.pointers(body, at, 2)?;
                if all.iter().any(|p| p.wildcards() != all[0].wildcards()) {
                    return Err(self.fail(
                        at,
                        "every pointer must have as many `*` segments: exclusivity is checked per element",
                    ));
                }
                Ok(Rule::Exclusive(all))
            }
            "hosts" => {
                let body = self.object(body, at)?;
                self.only(body, at, &["pointer", "allowed"])?;
                let pointer = self.pointer(
                    self.required(body, at, "pointer")?,
                    &format!("{at}/pointer"),
                )?;
                let entries = self
                    .required(body, at, "allowed")?
                    .as_array()
                    .filter(|entries| !entries.is_empty())
                    .ok_or_else(|| {
                        self.fail(
                            &format!("{at}/allowed"),
                            "must be a non-empty array of host names",
                        )
                    })?;
                let names = entries
                    .iter()
                    .enumerate()
                    .map(|(i, entry)| {
                        entry.as_str().ok_or_else(|| {
                            self.fail(&format!("{at}/allowed/{i}"), "must be a string")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let allowed = Allowed::parse(names)
                    .map_err(|problem| self.fail(&format!("{at}/allowed"), problem))?;
                Ok(Rule::Hosts { pointer, allowed })
            }
            "range" => {
                let body = self.object(body, at)?;
                self.only(body, at, &["pointer", "min", "max"])?;
                let pointer = self.pointer(
                    self.required(body, at, "pointer")?,
                    &format!("{at}/pointer"),
                )?;
                let (min, max) = (self.bound(body, at, "min")?, self.bound(body, at, "max")?);
                match (&min, &max) {
                    (None, None) => return Err(self.fail(at, "needs `min`, `max` or both")),
                    (Some(min), Some(max))
                        if crate::compare::numbers(min, max) == Ordering::Greater =>
                    {
                        return Err(self.fail(at, "`min` is greater than `max`"));
                    }
                    _ => {}
                }
                Ok(Rule::Range { pointer, min, max })
            }
            _ => Err(self.fail(
                at,
                format!("unknown rule kind (expected {})", quoted(&RULE_KINDS)),
            )),
        }
    }
}

/// `a`, `b`, `c` for a message.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
