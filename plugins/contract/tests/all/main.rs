//! Integration tests of the `contract` verifier, one binary: each rule kind,
//! hostile URLs, malformed contracts (against the published JSON Schema
//! too), and robustness.

mod hosts;
mod malformed;
mod robustness;
mod rules;

use warden_contract::{Error, verdict};
use warden_plugin_sdk::verifier::Verdict;

/// A finding as `(kind, pointer, start, end)`.
type Found = (String, String, u32, u32);

/// The verdict of `contracts` on `content`, which must not be an error.
fn verdict_of(content: &str, contracts: &[&str]) -> Verdict {
    let contracts: Vec<String> = contracts.iter().map(|c| c.to_string()).collect();
    let verdict = verdict(content, &contracts).unwrap_or_else(|e| panic!("{e}"));
    for finding in &verdict.findings {
        assert_eq!(finding.label, "contract");
        assert_eq!(finding.score, 1.0);
        assert!(finding.kind.len() <= 64);
    }
    assert!(verdict.redactions.is_empty());
    verdict
}

/// The findings of `contracts` on `content`.
fn found(content: &str, contracts: &[&str]) -> Vec<Found> {
    verdict_of(content, contracts)
        .findings
        .into_iter()
        .map(|f| {
            let l = f.location.expect("every finding has a location");
            (f.kind, l.pointer, l.start, l.end)
        })
        .collect()
}

/// The error of `contracts` on `content`.
fn error_of(content: &str, contracts: &[&str]) -> Error {
    let contracts: Vec<String> = contracts.iter().map(|c| c.to_string()).collect();
    match verdict(content, &contracts) {
        Ok(v) => panic!("expected an error, got {:?}", v.findings),
        Err(e) => e,
    }
}

/// Shorthand for an expected finding.
fn f(kind: &str, pointer: &str, start: u32, end: u32) -> Found {
    (kind.to_string(), pointer.to_string(), start, end)
}
