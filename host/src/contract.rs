//! Contracts: what a target's output (or a call's arguments) must satisfy,
//! declared by the operator per target (`[contracts."GLOB"]`) or by the
//! caller per request, and checked by a verifier (the built-in `contract`).
//!
//! The host does not check contracts itself; it checks that they are
//! contracts (`docs/schemas/contract.v1.json`, and the embedded JSON Schema
//! within the same bounds as a tool's schemas), so a malformed one is refused
//! when the config loads or the request arrives, naming where, instead of
//! failing every call through the verifier.

use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde_json::Value;

use crate::glob::glob_matches;
use crate::schema::Schema;

/// Longest contract accepted, as JSON text.
pub const CONTRACT_MAX: usize = 64 * 1024;

/// The published contract schema, compiled once. It ships in the binary
/// (a unit test compiles it); were it ever broken, every contract is refused.
static CONTRACT_SCHEMA: LazyLock<Result<Schema, String>> = LazyLock::new(|| {
    Schema::parse(include_str!("../../docs/schemas/contract.v1.json"))
        .map_err(|e| format!("the contract schema does not compile: {e}"))
});

/// `[contracts."GLOB"]` as written: a contract file per stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSection {
    /// Contract on the targets' arguments.
    pub input: Option<std::path::PathBuf>,
    /// Contract on the targets' outputs.
    pub output: Option<std::path::PathBuf>,
}

/// The contracts the operator declared for the targets a glob matches.
#[derive(Debug, Clone)]
pub struct DeclaredContract {
    /// Glob over qualified target names (`*` for any run of characters).
    pub targets: String,
    /// Contract on the arguments, as JSON text.
    pub input: Option<Arc<str>>,
    /// Contract on the output, as JSON text.
    pub output: Option<Arc<str>>,
}

/// Every declared contract, in glob order.
#[derive(Debug, Clone, Default)]
pub struct Contracts {
    declared: Vec<DeclaredContract>,
}

impl Contracts {
    /// Contracts from checked declarations.
    pub fn new(declared: Vec<DeclaredContract>) -> Contracts {
        Contracts { declared }
    }

    /// The operator's contracts on the arguments of `target`.
    pub fn on_input(&self, target: &str) -> Vec<Arc<str>> {
        self.matching(target)
            .filter_map(|c| c.input.clone())
            .collect()
    }

    /// The operator's contracts on the output of `target`, then
    /// `requested`, the request's own.
    pub fn on_output(&self, target: &str, requested: Option<&Arc<str>>) -> Vec<Arc<str>> {
        self.matching(target)
            .filter_map(|c| c.output.clone())
            .chain(requested.cloned())
            .collect()
    }

    fn matching<'a>(&'a self, target: &'a str) -> impl Iterator<Item = &'a DeclaredContract> {
        self.declared
            .iter()
            .filter(move |c| glob_matches(&c.targets, target))
    }
}

/// Checks `contract` and returns it as compact JSON text, or says what is
/// wrong (at which JSON Pointer).
pub fn checked(contract: &Value) -> Result<Arc<str>, String> {
    let text = contract.to_string();
    if text.len() > CONTRACT_MAX {
        return Err(format!(
            "{} bytes; at most {CONTRACT_MAX} are accepted",
            text.len()
        ));
    }
    CONTRACT_SCHEMA
        .as_ref()
        .map_err(Clone::clone)?
        .check(contract)?;
    if let Some(schema) = contract.get("schema") {
        Schema::from_value(schema.clone()).map_err(|e| format!("at /schema: {e}"))?;
    }
    Ok(text.into())
}

/// Reads and checks the contract file at `path`.
pub fn load(path: &std::path::Path) -> Result<Arc<str>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let contract: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    checked(&contract).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contracts_are_checked_against_their_schema() {
        let good = json!({
            "schema": {"type": "object", "required": ["total"]},
            "rules": [
                {"compare": {"left": "/start", "op": "<=", "right": "/end"}},
                {"hosts": {"pointer": "/links/*/url", "allowed": ["example.com"]}},
                {"range": {"pointer": "/total", "min": 0}}
            ]
        });
        assert!(checked(&good).is_ok());
        for (bad, at) in [
            (
                json!({"rules": [{"compare": {"left": "/a", "op": "=~", "right": "/b"}}]}),
                "/rules/0",
            ),
            (json!({"rules": [{"range": {"pointer": "/a"}}]}), "/rules/0"),
            (json!({"rules": [{"nonsense": {}}]}), "/rules/0"),
            (
                json!({"schema": {"$ref": "https://elsewhere.test/s.json"}}),
                "/schema",
            ),
            (json!({"extra": true}), "/"),
            (json!([1, 2]), "/"),
        ] {
            let error = checked(&bad).unwrap_err();
            assert!(error.contains(at), "{bad}: {error}");
        }
        let huge = json!({"rules": [{"exclusive": ["/a".repeat(CONTRACT_MAX), "/b"]}]});
        assert!(checked(&huge).unwrap_err().contains("at most"));
    }

    #[test]
    fn declared_contracts_apply_by_glob_and_stage() {
        let c = |s: &str| -> Arc<str> { s.into() };
        let contracts = Contracts::new(vec![DeclaredContract {
            targets: "weather.*".into(),
            input: Some(c("in")),
            output: Some(c("out")),
        }]);
        let requested = c("mine");
        let output = contracts.on_output("weather.now", Some(&requested));
        assert_eq!(output, vec![c("out"), c("mine")]);
        assert_eq!(contracts.on_input("weather.now"), vec![c("in")]);
        assert!(contracts.on_output("mail.send", None).is_empty());
    }
}
