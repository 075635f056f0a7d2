//! Precision and recall on the labelled set `eval/cases.jsonl` (answers
//! with the sources of `eval/sources.json`):
//!
//! ```text
//! cargo test -j 1 -p warden-grounding --test all eval -- --nocapture
//! ```
//!
//! A case is positive when it is labelled ungrounded. The verifier flags it
//! when the verdict has a finding of severity high (an unresolved citation
//! or a misquote); the figures for "medium or higher" (which adds
//! unsupported numbers and uncited claims) are printed too.

use serde_json::Value;
use warden_plugin_sdk::verifier::{Severity, Source};

use crate::source;

const CASES: &str = include_str!("../../eval/cases.jsonl");
const SOURCES: &str = include_str!("../../eval/sources.json");

#[derive(Debug, Default)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
}

impl Counts {
    fn add(&mut self, positive: bool, flagged: bool) {
        match (positive, flagged) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    fn precision(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fp).max(1))
    }

    fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: precision {:.4}  recall {:.4}  (tp {} fp {} fn {} tn {})",
            self.precision(),
            self.recall(),
            self.tp,
            self.fp,
            self.fn_,
            self.tn
        )
    }
}

fn sources(all: &Value, case: &Value) -> Vec<Source> {
    let evicted: Vec<&str> = case["evicted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    case["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|key| {
            let key = key.as_str().expect("a source key");
            let s = &all[key];
            let mut source = source(
                s["id"].as_str().unwrap(),
                s["locator"].as_str(),
                s["content"].as_str().unwrap(),
            );
            source.target_name = s["target_name"].as_str().unwrap().to_string();
            if evicted.contains(&key) {
                source.content = None;
            }
            source
        })
        .collect()
}

#[test]
fn precision_and_recall_on_the_labelled_set() {
    let all: Value = serde_json::from_str(SOURCES).expect("sources.json");
    let (mut high, mut medium) = (Counts::default(), Counts::default());
    let mut misses = Vec::new();
    let (mut positives, mut negatives) = (0, 0);
    for (line, raw) in CASES.lines().enumerate() {
        let case: Value = serde_json::from_str(raw).expect("a JSON object per line");
        let answer = case["answer"].as_str().expect("answer");
        let positive = !case["grounded"].as_bool().expect("grounded");
        if positive {
            positives += 1;
        } else {
            negatives += 1;
        }
        let content = serde_json::json!({ "answer": answer }).to_string();
        let verdict = warden_grounding::check(&content, &sources(&all, &case)).expect("a verdict");
        let at_least = |s: Severity| {
            verdict.findings.iter().any(|f| match s {
                Severity::High => matches!(f.severity, Severity::High | Severity::Critical),
                _ => matches!(
                    f.severity,
                    Severity::Medium | Severity::High | Severity::Critical
                ),
            })
        };
        let flagged = at_least(Severity::High);
        high.add(positive, flagged);
        medium.add(positive, at_least(Severity::Medium));
        if positive != flagged || positive != at_least(Severity::Medium) {
            let kinds: Vec<&str> = verdict.findings.iter().map(|f| f.kind.as_str()).collect();
            misses.push(format!(
                "line {}: {} ({}), findings {kinds:?}",
                line + 1,
                match (positive, flagged) {
                    (true, false) => "missed",
                    (false, true) => "false alarm",
                    _ => "false alarm at medium",
                },
                case["note"].as_str().unwrap_or("")
            ));
        }
    }
    println!("cases: {positives} ungrounded, {negatives} grounded");
    println!("{}", high.line("high finding"));
    println!("{}", medium.line("medium or higher"));
    for miss in &misses {
        println!("  {miss}");
    }
    assert!(positives + negatives >= 60 && positives >= 25 && negatives >= 25);
    // Floors at the figures in the README, so a change that loses ground fails.
    assert!(high.precision() >= 0.95, "{}", high.line("high"));
    assert!(high.recall() >= 0.55, "{}", high.line("high"));
    assert!(medium.precision() >= 0.9, "{}", medium.line("medium"));
    assert!(medium.recall() >= 0.85, "{}", medium.line("medium"));
}
