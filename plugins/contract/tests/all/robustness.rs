//! Deep and large content, the findings cap, and random content: no panic,
//! every location names a value of the content, no message quotes one.

use super::{error_of, found, verdict_of};
use serde_json::{Value, json};
use warden_contract::MAX_FINDINGS;

#[test]
fn deep_content_is_checked_or_refused_without_overflowing() {
    // serde_json refuses nesting past 128 levels: an error, not a crash.
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let contract = r##"{"schema": {"items": {"$ref": "#"}, "type": ["array", "integer"]}}"##;
    assert!(
        error_of(&deep, &[contract])
            .to_string()
            .starts_with("content is not JSON: recursion limit")
    );
    // 120 levels are checked in full, with a recursive schema.
    let nested = format!("{}\"x\"{}", "[".repeat(120), "]".repeat(120));
    let pointer = "/0".repeat(120);
    let found = found(&nested, &[contract]);
    assert_eq!(
        found,
        [("schema-violation".to_string(), pointer.clone(), 0, 1)]
    );
    let range = format!(r#"{{"rules": [{{"range": {{"pointer": "{pointer}", "min": 0}}}}]}}"#);
    assert_eq!(super::found(&nested, &[&range]).len(), 1);
}

#[test]
fn huge_arrays_are_bounded() {
    let rule = r#"{"rules": [{"range": {"pointer": "/items/*/price", "max": 10}}]}"#;
    // 10,000 values are checked.
    let fine = json!({"items": vec![json!({"price": 1}); 10_000]}).to_string();
    assert!(found(&fine, &[rule]).is_empty());
    // Past the expansion bound the content cannot be checked: an error.
    let huge = json!({"items": vec![json!({"price": 1}); 10_001]}).to_string();
    let error = error_of(&huge, &[rule]).to_string();
    assert_eq!(
        error,
        "contract 0, rule 0: `/items/*/price` matches more than 10000 values in the content"
    );
    // Findings stop at the cap.
    let bad = json!({"items": vec![json!({"price": 11}); 5_000]}).to_string();
    let verdict = verdict_of(&bad, &[rule, rule]);
    assert_eq!(verdict.findings.len(), MAX_FINDINGS);
    let schema = r#"{"schema": {"items": {"type": "string"}}}"#;
    let numbers = json!(vec![1; 5_000]).to_string();
    assert_eq!(verdict_of(&numbers, &[schema]).findings.len(), MAX_FINDINGS);
    // A pair of wildcards over a 200 x 200 grid passes the bound mid-way.
    let grid = json!({"g": vec![vec![0; 200]; 200]}).to_string();
    let cells = r#"{"rules": [{"range": {"pointer": "/g/*/*", "min": 0}}]}"#;
    assert!(
        error_of(&grid, &[cells])
            .to_string()
            .contains("matches more than 10000 values")
    );
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "start",
    "end",
    "price",
    "url",
    "card",
    "iban",
    "items",
    "2024-05-01",
    "2024-05-01T10:00:00Z",
    "https://example.com/",
    "https://evil.test@example.com/",
    "😀 clé",
    "a/b",
    "m~n",
    "*",
    "",
];

fn value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 4 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.below(200) as i64 - 100),
        3 => json!(rng.below(1000) as f64 / 7.0),
        4 => json!(format!(
            "{}{}",
            WORDS[rng.below(WORDS.len() as u64) as usize],
            rng.below(10)
        )),
        5 | 6 => {
            let mut object = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                let key = WORDS[rng.below(WORDS.len() as u64) as usize];
                object.insert(key.to_string(), value(rng, depth + 1));
            }
            Value::Object(object)
        }
        _ => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
    }
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(members) => members.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

#[test]
fn random_content_gives_well_formed_findings() {
    let contract = r#"{"schema": {"type": "object", "properties": {"start": {"type": "number"},
        "items": {"type": "array", "items": {"type": "object", "required": ["price"]}}},
        "additionalProperties": {"not": {"type": "boolean"}}},
      "rules": [
        {"compare": {"left": "/start", "op": "<=", "right": "/end"}},
        {"compare": {"left": "/items/*/start", "op": "<", "right": "/items/*/end"}},
        {"requires": {"if": "/*/card", "then": ["/*/iban", "/items"]}},
        {"exclusive": ["/card", "/iban", "/a~1b"]},
        {"hosts": {"pointer": "/*/url", "allowed": ["example.com"]}},
        {"range": {"pointer": "/items/*/price", "min": -50, "max": 50}}]}"#;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0;
    for _ in 0..3000 {
        let document = value(&mut rng, 0);
        let content = document.to_string();
        let verdict = verdict_of(&content, &[contract]);
        let mut texts = Vec::new();
        strings(&document, &mut texts);
        for finding in &verdict.findings {
            let location = finding.location.as_ref().unwrap();
            let target = document
                .pointer(&location.pointer)
                .unwrap_or_else(|| panic!("{} names nothing in {content}", location.pointer));
            let expected_end = target.as_str().map_or(0, str::len) as u32;
            assert_eq!(
                (location.start, location.end),
                (0, expected_end),
                "{finding:?}"
            );
            for text in texts
                .iter()
                .filter(|t| t.len() >= 4 && !contract.contains(t.as_str()))
            {
                assert!(
                    !finding.message.contains(text.as_str()),
                    "{} quotes {text:?}",
                    finding.message
                );
            }
        }
        total += verdict.findings.len();
    }
    assert!(
        total > 500,
        "the content should break the contract often: {total}"
    );
}
