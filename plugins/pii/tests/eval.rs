//! Precision and recall on the labelled set `eval/cases.jsonl`.
//!
//! ```text
//! cargo test -p warden-pii --test eval -- --nocapture
//! ```
//!
//! A positive case counts as found only when a finding of its `kind` is
//! reported; a negative case with any finding at all is a false positive.

use std::collections::BTreeMap;

use warden_pii::scan;

const CASES: &str = include_str!("../eval/cases.jsonl");

#[test]
fn precision_and_recall_on_the_labelled_set() {
    let (mut tp, mut fp, mut fn_, mut tn) = (0u32, 0u32, 0u32, 0u32);
    let mut per_kind: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut misses = Vec::new();
    let (mut positives, mut negatives) = (0, 0);
    for (line, raw) in CASES.lines().enumerate() {
        let case: serde_json::Value = serde_json::from_str(raw).expect("a JSON object per line");
        let text = case["text"].as_str().expect("text");
        let pii = case["pii"].as_bool().expect("pii");
        let kinds: Vec<&str> = scan(text).iter().map(|m| m.kind.as_str()).collect();
        if pii {
            positives += 1;
            let kind = case["kind"].as_str();
            let hit = match kind {
                Some(k) => kinds.contains(&k),
                None => !kinds.is_empty(),
            };
            let entry = per_kind
                .entry(kind.unwrap_or("any").to_string())
                .or_default();
            entry.1 += 1;
            if hit {
                tp += 1;
                entry.0 += 1;
            } else {
                fn_ += 1;
                misses.push(format!(
                    "line {}: missed {kind:?} in {text:?} (found {kinds:?})",
                    line + 1
                ));
            }
        } else {
            negatives += 1;
            if kinds.is_empty() {
                tn += 1;
            } else {
                fp += 1;
                misses.push(format!(
                    "line {}: false positive {kinds:?} in {text:?}",
                    line + 1
                ));
            }
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    println!("cases: {positives} positive, {negatives} negative");
    println!("tp {tp}  fp {fp}  fn {fn_}  tn {tn}");
    println!("precision {precision:.4}  recall {recall:.4}");
    for (kind, (hit, total)) in &per_kind {
        println!("  {kind:<18} {hit:>3}/{total:<3}");
    }
    for miss in &misses {
        println!("  {miss}");
    }
    assert!(positives >= 200 && negatives >= 200, "the set is too small");
    assert!(precision >= 0.95, "precision {precision:.4}");
    assert!(recall >= 0.95, "recall {recall:.4}");
}
