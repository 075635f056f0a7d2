//! Precision and recall of the rule set over the labelled evaluation set
//! `eval/cases.jsonl`, scanned the way the verifier scans content (each case
//! is one JSON string). Run with `cargo test -p warden-secrets --test eval --
//! --nocapture` to see the figures.

#[path = "../eval/generate.rs"]
mod generate;

use serde_json::Value;

const CASES: &str = include_str!("../eval/cases.jsonl");

#[test]
fn precision_and_recall_meet_the_bar() {
    let (mut tp, mut fp, mut tn, mut fn_) = (0u32, 0u32, 0u32, 0u32);
    let mut right_kind = 0u32;
    let mut misses = Vec::new();
    for (line, text) in CASES.lines().enumerate() {
        let case: Value = serde_json::from_str(text).expect("a JSON object per line");
        let body = case["text"].as_str().expect("text");
        let secret = case["secret"].as_bool().expect("secret");
        let content = serde_json::to_string(body).unwrap();
        let verdict = warden_secrets::verdict(&content).expect("a verdict");
        let kinds: Vec<&str> = verdict.findings.iter().map(|f| f.kind.as_str()).collect();
        match (secret, !kinds.is_empty()) {
            (true, true) => {
                tp += 1;
                if let Some(kind) = case["kind"].as_str()
                    && kinds.contains(&kind)
                {
                    right_kind += 1;
                }
            }
            (true, false) => {
                fn_ += 1;
                misses.push(format!(
                    "line {}: missed {:?} ({})",
                    line + 1,
                    body,
                    case["kind"]
                ));
            }
            (false, true) => {
                fp += 1;
                misses.push(format!(
                    "line {}: false alarm {kinds:?} on {body:?}",
                    line + 1
                ));
            }
            (false, false) => tn += 1,
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    println!(
        "cases: {} positive, {} negative; TP {tp} FP {fp} TN {tn} FN {fn_}",
        tp + fn_,
        tn + fp
    );
    println!(
        "precision {precision:.4}  recall {recall:.4}  expected kind among findings {right_kind}/{tp}"
    );
    for miss in &misses {
        println!("  {miss}");
    }
    assert!(
        tp + fn_ >= 200 && tn + fp >= 200,
        "at least 200 cases of each label"
    );
    assert!(precision >= 0.95, "precision {precision:.4}");
    assert!(recall >= 0.95, "recall {recall:.4}");
}

/// The committed cases are exactly what the generator produces
/// (regenerate with `cargo run --example gen_cases`).
#[test]
fn the_cases_file_is_generated() {
    assert!(
        generate::jsonl(&generate::cases()) == CASES,
        "eval/cases.jsonl is stale: run `cargo run --example gen_cases`"
    );
}
