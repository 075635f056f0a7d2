//! Precision and recall of the verdict over the labelled set
//! `eval/cases.jsonl`, each case scanned the way the verifier scans content
//! (one JSON string). A case counts as positive when its highest finding
//! score reaches the threshold. Run with
//! `cargo test -p warden-injection --test eval -- --nocapture` to see the
//! curve and the misses at the chosen threshold.

use serde_json::Value;
use warden_injection::{THRESHOLD, max_score};

const CASES: &str = include_str!("../eval/cases.jsonl");

struct Case {
    line: usize,
    positive: bool,
    variant: String,
    text: String,
    score: f32,
}

fn cases() -> Vec<Case> {
    CASES
        .lines()
        .enumerate()
        .map(|(line, raw)| {
            let case: Value = serde_json::from_str(raw).expect("a JSON object per line");
            let text = case["text"].as_str().expect("text").to_string();
            let content = serde_json::to_string(&text).unwrap();
            Case {
                line: line + 1,
                positive: case["injection"].as_bool().expect("injection"),
                variant: case["variant"].as_str().unwrap_or("plain").to_string(),
                score: max_score(&content).expect("a verdict"),
                text,
            }
        })
        .collect()
}

/// (precision, recall, tp, fp, fn) at `threshold`.
fn at(cases: &[Case], threshold: f32) -> (f64, f64, u32, u32, u32) {
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for case in cases {
        match (case.positive, case.score >= threshold) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    let precision = if tp + fp == 0 {
        1.0
    } else {
        f64::from(tp) / f64::from(tp + fp)
    };
    (precision, f64::from(tp) / f64::from(tp + fn_), tp, fp, fn_)
}

#[test]
fn precision_and_recall_meet_the_bar() {
    let cases = cases();
    let positives = cases.iter().filter(|c| c.positive).count();
    let negatives = cases.len() - positives;
    println!("cases: {positives} positive, {negatives} negative");
    println!("threshold  precision  recall   tp   fp   fn");
    for tenth in 1..=9 {
        let threshold = tenth as f32 / 10.0;
        let (p, r, tp, fp, fn_) = at(&cases, threshold);
        println!("   {threshold:.1}      {p:.4}    {r:.4}  {tp:>3}  {fp:>3}  {fn_:>3}");
    }
    let (precision, recall, tp, fp, fn_) = at(&cases, THRESHOLD);
    println!(
        "chosen threshold {THRESHOLD}: precision {precision:.4} recall {recall:.4} (tp {tp} fp {fp} fn {fn_})"
    );
    let mut variants: Vec<&str> = cases.iter().map(|c| c.variant.as_str()).collect();
    variants.sort_unstable();
    variants.dedup();
    for variant in variants {
        let of: Vec<&Case> = cases.iter().filter(|c| c.variant == variant).collect();
        let pos = of.iter().filter(|c| c.positive).count();
        let hit = of
            .iter()
            .filter(|c| c.positive && c.score >= THRESHOLD)
            .count();
        let false_alarms = of
            .iter()
            .filter(|c| !c.positive && c.score >= THRESHOLD)
            .count();
        println!(
            "  {variant:<10} positives found {hit}/{pos}, false alarms {false_alarms}/{}",
            of.len() - pos
        );
    }
    for case in &cases {
        if case.positive != (case.score >= THRESHOLD) {
            let what = if case.positive {
                "missed"
            } else {
                "false alarm"
            };
            println!(
                "  line {} {what} (score {:.2}): {:?}",
                case.line, case.score, case.text
            );
        }
    }
    assert!(positives >= 220 && negatives >= 220, "the set is too small");
    assert!(precision >= 0.95, "precision {precision:.4}");
    assert!(recall >= 0.90, "recall {recall:.4}");
}
