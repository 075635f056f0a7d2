//! The policy input document (`input`, version [`VERSION`]): the one
//! definition of its fields.
//!
//! Each part of the document is a struct declared with [`input_object!`],
//! which gives it its field names ([`Input::FIELDS`], ...) and its form in
//! the evaluator's value type, built directly (no JSON on the way). The bundle
//! checker reads field names from these types; the published schema
//! (`docs/schemas/policy-input.v1.json`, [`INPUT_SCHEMA`]) is tested against
//! them here, and the documents the kernel builds against the schema by the
//! e2e test `the_input_document_matches_its_published_schema`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crate::audit::{FindingRecord, VerdictRecord};

/// Version of the input document (`input.version`).
pub const VERSION: u32 = 1;

/// The published policy input contract.
pub const INPUT_SCHEMA: &str = include_str!("../../../docs/schemas/policy-input.v1.json");

/// A value with a form in the input document.
pub trait InputValue {
    /// The value in the evaluator's value type.
    fn into_input(self) -> regorus::Value;
}

impl InputValue for regorus::Value {
    fn into_input(self) -> regorus::Value {
        self
    }
}

macro_rules! scalar_input {
    ($($ty:ty),*) => {$(
        impl InputValue for $ty {
            fn into_input(self) -> regorus::Value {
                regorus::Value::from(self)
            }
        }
    )*};
}
scalar_input!(bool, u64, i64, f64, &str, String);

impl InputValue for u32 {
    fn into_input(self) -> regorus::Value {
        regorus::Value::from(u64::from(self))
    }
}

impl<T: InputValue> InputValue for Option<T> {
    fn into_input(self) -> regorus::Value {
        self.map_or(regorus::Value::Null, InputValue::into_input)
    }
}

impl<T: InputValue> InputValue for Vec<T> {
    fn into_input(self) -> regorus::Value {
        regorus::Value::from(self.into_iter().map(T::into_input).collect::<Vec<_>>())
    }
}

impl<T: InputValue> InputValue for BTreeMap<String, T> {
    fn into_input(self) -> regorus::Value {
        regorus::Value::from(
            self.into_iter()
                .map(|(key, value)| (regorus::Value::from(key), value.into_input()))
                .collect::<BTreeMap<_, _>>(),
        )
    }
}

/// Declares a part of the input document: a struct whose field names are
/// the document's, with `FIELDS` and its [`InputValue`] form.
macro_rules! input_object {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$field_meta:meta])* $field:ident: $ty:ty, )* }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name { $( $(#[$field_meta])* pub $field: $ty, )* }

        impl $name {
            /// Its field names in the document.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl InputValue for $name {
            fn into_input(self) -> regorus::Value {
                let mut fields = BTreeMap::new();
                $( fields.insert(regorus::Value::from(stringify!($field)), self.$field.into_input()); )*
                regorus::Value::from(fields)
            }
        }
    )*};
}

input_object! {
    /// `input` at the call stage. (`principal`, `target` and `capabilities`
    /// are a [`PrincipalPart`], a [`TargetPart`] and
    /// [`crate::capabilities::Effective::summary`], converted once per principal or target.)
    pub struct Input {
        /// [`VERSION`].
        version: u32,
        /// `call` (the output stage's input is this one with an [`OutputPart`]).
        stage: &'static str,
        /// Who calls.
        principal: regorus::Value,
        /// The session the call is in.
        session: SessionPart,
        /// What is called.
        target: regorus::Value,
        /// The call's arguments.
        args: regorus::Value,
        /// What the target may reach.
        capabilities: regorus::Value,
        /// By verifier name: the verdicts on the arguments ([`verdicts`]).
        verdicts: regorus::Value,
        /// Calls counted so far.
        usage: UsagePart,
        /// When the decision is made.
        time: TimePart,
        /// For a model, what the chat request asks ([`CompletionPart`]); null for a tool.
        completion: regorus::Value,
        /// The budgets the call would charge ([`BudgetPart`]): for a model
        /// those that apply, for a priced tool the money budgets naming no
        /// model; empty for an unpriced tool.
        budget: Vec<BudgetPart>,
    }

    /// One budget in `input.budget`, with its current period's counts.
    pub struct BudgetPart {
        /// Its name.
        name: String,
        /// `usd` (millionths of a dollar), `tokens` or `requests`.
        unit: &'static str,
        /// `daily`, `monthly`, `total` or `minute` (a rate limit).
        period: &'static str,
        /// The limit.
        limit: i64,
        /// Settled this period.
        spent: i64,
        /// Held by calls still running.
        reserved: i64,
        /// limit − spent − reserved, at least 0.
        remaining: i64,
        /// When the period ends (RFC 3339); null for `total`.
        period_end: Option<String>,
    }

    /// `input.completion`: what a chat request asks of a model.
    pub struct CompletionPart {
        /// `chat` or `embeddings`.
        operation: &'static str,
        /// The provider's id for the model.
        upstream_model: String,
        /// Where the provider is (`scheme://host[:port]`).
        origin: String,
        /// The model's context window in tokens, when configured.
        context_window: Option<u32>,
        /// Messages in the request (for embeddings: inputs).
        messages: u64,
        /// UTF-8 bytes of the messages' text (for embeddings: of the inputs).
        prompt_bytes: u64,
        /// A rough token count of the prompt: its bytes divided by 4, rounded up.
        prompt_tokens_estimate: u64,
        /// Names of the functions the request offers the model.
        tools_offered: Vec<String>,
        /// `text`, `json_object`, `json_schema`, or null when not given.
        response_format: Option<String>,
        /// The most tokens the completion may have, when the request says.
        max_tokens: Option<u64>,
        /// Whether the answer is to be streamed.
        stream: bool,
    }

    /// The fields the output stage sets on the call's document.
    pub struct OutputPart {
        /// `output`.
        stage: &'static str,
        /// The target's output.
        output: regorus::Value,
        /// By verifier name: the verdicts on the output ([`verdicts`]).
        verdicts: regorus::Value,
    }

    /// `input.principal`.
    pub struct PrincipalPart {
        /// Stable identifier.
        id: String,
        /// Roles granted by the operator.
        roles: Vec<String>,
        /// Tenant.
        tenant: String,
        /// Operator-defined attributes.
        attributes: regorus::Value,
        /// Labels stuck to the principal by earlier calls.
        labels: Vec<String>,
    }

    /// `input.session`.
    pub struct SessionPart {
        /// The session id, when the call names one.
        id: Option<String>,
        /// The session's labels.
        labels: Vec<String>,
    }

    /// `input.target`.
    pub struct TargetPart {
        /// `tool`.
        kind: &'static str,
        /// Qualified name (`plugin.tool`).
        name: String,
        /// Name inside its provider.
        tool: String,
        /// Provider (plugin or upstream) name.
        plugin: String,
        /// Provider version.
        plugin_version: String,
        /// SHA-256 of the plugin's component; null for an upstream's tool.
        plugin_sha256: Option<String>,
        /// The upstream MCP server, for a tool Warden forwards; else null.
        upstream: regorus::Value,
        /// Whether the tool has side effects.
        side_effects: bool,
        /// Operator labels.
        labels: Vec<String>,
    }

    /// `input.usage`.
    pub struct UsagePart {
        /// Calls by the principal's tenant in the current window.
        tenant_calls: u64,
        /// Calls by the principal in the current window.
        principal_calls: u64,
    }

    /// `input.time`.
    pub struct TimePart {
        /// RFC 3339 timestamp.
        rfc3339: String,
        /// Nanoseconds since the Unix epoch.
        unix_ns: Option<i64>,
    }

    /// `input.verdicts.NAME`.
    pub struct VerdictPart {
        /// `clean`, `findings` or `error`.
        verdict: String,
        /// Whether the operator marked the verifier advisory.
        advisory: bool,
        /// SHA-256 of the verifier's component.
        sha256: String,
        /// What it found.
        findings: Vec<FindingPart>,
        /// The highest score among its findings (0 without any).
        max_score: f64,
        /// Its findings' labels, sorted, once each.
        labels: Vec<String>,
        /// Its findings' kinds, sorted, once each.
        kinds: Vec<String>,
        /// Why the verdict is `error`.
        error: Option<String>,
    }

    /// One finding in `input.verdicts.NAME.findings`.
    pub struct FindingPart {
        /// What was found.
        kind: String,
        /// The label policy may add for it.
        label: String,
        /// `info` to `critical`.
        severity: String,
        /// Confidence from 0 to 1.
        score: f64,
        /// JSON Pointer to the string, when the finding has a place.
        pointer: Option<String>,
        /// Byte range of the match within that string.
        start: Option<u32>,
        /// One past its last byte.
        end: Option<u32>,
        /// The verifier's one line about it.
        message: String,
    }
}

/// `input.verdicts`: by verifier name, what each found.
pub fn verdicts<'a>(records: impl IntoIterator<Item = &'a VerdictRecord>) -> regorus::Value {
    let sorted_once = |mut values: Vec<String>| {
        values.sort_unstable();
        values.dedup();
        values
    };
    let by_name: BTreeMap<String, VerdictPart> = records
        .into_iter()
        .map(|record| {
            let findings = &record.findings;
            let part = VerdictPart {
                verdict: record.verdict.clone(),
                advisory: record.advisory,
                sha256: record.sha256.clone(),
                findings: findings.iter().map(FindingPart::of).collect(),
                max_score: findings.iter().map(|f| f.score).fold(0.0_f64, f64::max),
                labels: sorted_once(findings.iter().map(|f| f.label.clone()).collect()),
                kinds: sorted_once(findings.iter().map(|f| f.kind.clone()).collect()),
                error: record.error.clone(),
            };
            (record.verifier.clone(), part)
        })
        .collect();
    by_name.into_input()
}

impl FindingPart {
    fn of(finding: &FindingRecord) -> FindingPart {
        FindingPart {
            kind: finding.kind.clone(),
            label: finding.label.clone(),
            severity: finding.severity.clone(),
            score: finding.score,
            pointer: finding.pointer.clone(),
            start: finding.start,
            end: finding.end,
            message: finding.message.clone(),
        }
    }
}

/// Fields of `input`'s fields: the names inside each part that is an object
/// of known fields (`None`: free-form, like `args`; empty: a scalar).
fn input_fields() -> &'static BTreeMap<&'static str, Option<BTreeSet<&'static str>>> {
    static FIELDS: OnceLock<BTreeMap<&'static str, Option<BTreeSet<&'static str>>>> =
        OnceLock::new();
    FIELDS.get_or_init(|| {
        let known = |fields: &[&'static str]| Some(fields.iter().copied().collect());
        let summary = crate::capabilities::summary_fields();
        Input::FIELDS
            .iter()
            .chain(OutputPart::FIELDS)
            .map(|&name| {
                let children = match name {
                    "version" | "stage" => known(&[]),
                    "principal" => known(PrincipalPart::FIELDS),
                    "session" => known(SessionPart::FIELDS),
                    "target" => known(TargetPart::FIELDS),
                    "capabilities" => known(&summary),
                    "usage" => known(UsagePart::FIELDS),
                    "time" => known(TimePart::FIELDS),
                    _ => None,
                };
                (name, children)
            })
            .collect()
    })
}

/// The first `input.a.b` reference in `text` that the input document does not
/// have, as (line, reference).
pub(super) fn unknown_input_reference(text: &str) -> Option<(usize, String)> {
    for (number, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("input.") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "input.".len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let path: Vec<&str> = rest
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .next()
                .unwrap_or_default()
                .split('.')
                .collect();
            let Some(children) = input_fields().get(path[0]) else {
                return Some((number + 1, format!("input.{}", path[0])));
            };
            if let Some(child) = path.get(1).filter(|c| !c.is_empty())
                && let Some(children) = children
                && !children.contains(*child)
            {
                return Some((number + 1, format!("input.{}.{child}", path[0])));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn schema() -> Value {
        serde_json::from_str(INPUT_SCHEMA).unwrap()
    }

    fn names(list: &Value) -> BTreeSet<String> {
        match list {
            Value::Array(items) => items.iter().map(|v| v.as_str().unwrap().into()).collect(),
            Value::Object(fields) => fields.keys().cloned().collect(),
            _ => panic!("expected a list of fields, got {list}"),
        }
    }

    fn set(fields: &[&str]) -> BTreeSet<String> {
        fields.iter().map(|f| f.to_string()).collect()
    }

    /// Every listed field is required and no other is allowed.
    fn assert_closed(schema: &Value, fields: &[&str], what: &str) {
        assert_eq!(
            names(&schema["properties"]),
            set(fields),
            "{what}: properties"
        );
        assert_eq!(names(&schema["required"]), set(fields), "{what}: required");
        assert_eq!(
            schema["additionalProperties"], false,
            "{what} must be closed"
        );
    }

    #[test]
    fn the_published_schema_has_exactly_the_fields_of_the_types() {
        let schema = schema();
        assert_eq!(
            names(&schema["required"]),
            set(Input::FIELDS),
            "input: required"
        );
        let all: Vec<&str> = Input::FIELDS
            .iter()
            .chain(OutputPart::FIELDS)
            .copied()
            .collect();
        assert_eq!(names(&schema["properties"]), set(&all), "input: properties");
        let fields = &schema["properties"];
        assert_closed(&fields["principal"], PrincipalPart::FIELDS, "principal");
        assert_closed(&fields["session"], SessionPart::FIELDS, "session");
        assert_closed(&fields["target"], TargetPart::FIELDS, "target");
        assert_closed(&fields["usage"], UsagePart::FIELDS, "usage");
        assert_closed(&fields["time"], TimePart::FIELDS, "time");
        assert_closed(
            &fields["completion"]["oneOf"][1],
            CompletionPart::FIELDS,
            "completion",
        );
        let verdict = &fields["verdicts"]["additionalProperties"];
        assert_closed(verdict, VerdictPart::FIELDS, "a verdict");
        assert_closed(
            &verdict["properties"]["findings"]["items"],
            FindingPart::FIELDS,
            "a finding",
        );
    }

    #[test]
    fn a_part_s_value_has_its_fields() {
        let usage = UsagePart {
            tenant_calls: 3,
            principal_calls: 2,
        }
        .into_input();
        let json = serde_json::to_value(&usage).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"tenant_calls": 3, "principal_calls": 2})
        );
    }
}
