//! Cost of one `verify` call for a realistic contract — a schema of 10
//! properties (formats, a pattern, an item schema) and 4 rules — on an order
//! of ~2 KB and of ~10 KB, split into what every call pays to load the
//! contract (parse, compile the schema) and what checking the content costs.
//!
//! `cargo run -j 1 --release -p warden-contract --example contract_throughput` (in `plugins/`).

use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};
use warden_contract::{Contract, verdict};

const CONTRACT: &str = r#"{
  "schema": {
    "type": "object",
    "required": ["id", "customer", "currency", "created", "items", "total"],
    "additionalProperties": false,
    "properties": {
      "id": {"type": "string", "pattern": "^ord_[0-9a-f]{16}$"},
      "customer": {"type": "object", "required": ["name", "email"],
                   "properties": {"name": {"type": "string", "maxLength": 200},
                                  "email": {"type": "string", "format": "email"}}},
      "currency": {"enum": ["EUR", "USD", "GBP"]},
      "created": {"type": "string", "format": "date-time"},
      "start": {"type": "string", "format": "date"},
      "end": {"type": "string", "format": "date"},
      "items": {"type": "array", "minItems": 1, "maxItems": 500, "items": {
        "type": "object", "required": ["sku", "qty", "price"],
        "properties": {"sku": {"type": "string"}, "name": {"type": "string"},
                       "qty": {"type": "integer", "minimum": 1},
                       "price": {"type": "number"}, "url": {"type": "string", "format": "uri"}}}},
      "total": {"type": "number", "minimum": 0},
      "discount": {"type": "number"},
      "coupon": {"type": "string"}
    }
  },
  "rules": [
    {"compare": {"left": "/start", "op": "<=", "right": "/end"}},
    {"requires": {"if": "/discount", "then": ["/coupon"]}},
    {"hosts": {"pointer": "/items/*/url", "allowed": ["shop.example.com", "*.cdn.example.net"]}},
    {"range": {"pointer": "/items/*/price", "min": 0, "max": 10000}}
  ]
}"#;

/// An order with `lines` items: about 160 bytes each.
fn order(lines: usize) -> String {
    let items: Vec<Value> = (0..lines)
        .map(|i| {
            json!({
                "sku": format!("SKU-{i:05}"),
                "name": format!("Widget number {i}, blue, large"),
                "qty": 1 + i % 4,
                "price": 9.5 + i as f64,
                "url": format!("https://img{}.cdn.example.net/p/{i}.png", i % 3),
            })
        })
        .collect();
    json!({
        "id": "ord_0123456789abcdef",
        "customer": {"name": "Jane Doe", "email": "jane@example.com"},
        "currency": "EUR",
        "created": "2026-11-30T12:00:00Z",
        "start": "2026-12-01",
        "end": "2026-12-24",
        "items": items,
        "total": 1234.5,
        "discount": 10,
        "coupon": "WINTER",
    })
    .to_string()
}

/// Median microseconds of `f` over runs for at least `min_time`.
fn median_us(min_time: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f();
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < min_time || samples.len() < 50 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let contracts = [CONTRACT.to_string()];
    let min_time = Duration::from_secs(2);
    let load = median_us(min_time, || {
        black_box(Contract::parse(0, black_box(CONTRACT)).unwrap());
    });
    println!("load the contract (parse + compile the schema): {load:.1} µs");
    let full: Value = serde_json::from_str(CONTRACT).unwrap();
    let schema_only = json!({"schema": full["schema"]}).to_string();
    let rules_only = json!({"rules": full["rules"]}).to_string();
    for lines in [15, 80] {
        let content = order(lines);
        let findings = verdict(&content, &contracts).unwrap().findings.len();
        assert_eq!(findings, 0, "the sample order keeps its contract");
        let call = median_us(min_time, || {
            black_box(verdict(black_box(&content), &contracts).unwrap());
        });
        println!(
            "{:>6} bytes, {lines:>2} items: {call:.1} µs per call ({:.1} µs past loading the contract)",
            content.len(),
            call - load
        );
        let parse = median_us(min_time, || {
            black_box(serde_json::from_str::<Value>(black_box(&content)).unwrap());
        });
        let mut parts = Vec::new();
        for (name, contract) in [("schema only", &schema_only), ("rules only", &rules_only)] {
            let contracts = [contract.clone()];
            let us = median_us(min_time, || {
                black_box(verdict(black_box(&content), &contracts).unwrap());
            });
            parts.push(format!("{name} {us:.1} µs"));
        }
        println!(
            "        parsing the content alone {parse:.1} µs; {}",
            parts.join("; ")
        );
    }
    // A broken order: every item's price out of range and its URL elsewhere.
    let broken = order(80)
        .replace("cdn.example.net", "evil.test")
        .replace("\"price\":", "\"price\":-");
    let findings = verdict(&broken, &contracts).unwrap().findings.len();
    let call = median_us(min_time, || {
        black_box(verdict(black_box(&broken), &contracts).unwrap());
    });
    println!(
        "{:>6} bytes, 80 items, {findings} findings (capped): {call:.1} µs per call",
        broken.len()
    );
}
