//! Throughput of the detector on mixed text, natively.
//!
//! ```text
//! cargo run --release -p warden-pii --example pii_throughput
//! ```
//!
//! Reports µs per KB for 10 KB and 1 MB, as one string and as a JSON
//! document of 1 KB strings through `verify_content` (parsing included).

use std::hint::black_box;
use std::time::Instant;

use warden_pii::{Mode, scan, verify_content};

/// Prose, numbers that are not personal data, and now and then some that is.
const PIECES: &[&str] = &[
    "The quarterly report shows revenue of 1,234,567.89 EUR, up 12% on last year. ",
    "Deployment 2024-03-05T14:22:11Z of version 2.14.3 finished in 42 seconds. ",
    "Request 550e8400-e29b-41d4-a716-446655440000 took 183 ms on node-7. ",
    "Les résultats sont encourageants ; l'équipe prévoit une nouvelle itération. ",
    "Order #100234567 shipped with tracking 1Z999AA10123456784 on Monday. ",
    "Contact jane.doe@example.com or call +44 20 7946 0958 for details. ",
    "commit 6f7b0962d1cdb4e6cb6a0e23bb862bc56193e816 fixed the cache. ",
    "Die Besprechung ist am 12.05.2023 um 14:30 Uhr in Raum 4-112. ",
    "Paid with 4539 1488 0343 6467; refund to DE89 3704 0044 0532 0130 00. ",
    "Latency p50 12.4 ms, p99 87.1 ms, 1500 requests per second at peak. ",
    "Login from 81.2.69.160 at 10:30:45 was flagged by the rules engine. ",
    "会议在下午三点开始，请提前十分钟到达。 ",
    "The model was trained for 3 epochs with a learning rate of 0.0003. ",
    "SSN 536-22-1234 and BSN 111222333 appear in the legacy export. ",
];

fn mixed(len: usize) -> String {
    let mut text = String::with_capacity(len + 128);
    let mut i = 0usize;
    while text.len() < len {
        // A fixed stride through the pieces so PII is spread, not clustered.
        text.push_str(PIECES[(i * 5) % PIECES.len()]);
        i += 1;
    }
    text
}

fn as_document(text: &str) -> String {
    let mut strings = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(1024);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        strings.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    serde_json::to_string(&serde_json::json!({ "items": strings })).expect("serialises")
}

fn measure(name: &str, bytes: usize, iterations: u32, mut run: impl FnMut() -> usize) {
    let found = run(); // warm-up, and the regexes compile here
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(run());
    }
    let elapsed = started.elapsed();
    let per_kb = elapsed.as_secs_f64() * 1e6 / f64::from(iterations) / (bytes as f64 / 1024.0);
    println!(
        "{name:<28} {:>9} bytes  {found:>5} findings  {per_kb:>7.2} µs/KB  ({:.1} MB/s)",
        bytes,
        1024.0 / per_kb
    );
}

fn main() {
    for (label, len, iterations) in [("10 KB", 10 * 1024, 2000), ("1 MB", 1024 * 1024, 20)] {
        let text = mixed(len);
        measure(
            &format!("scan, one string, {label}"),
            text.len(),
            iterations,
            || scan(black_box(&text)).len(),
        );
        let document = as_document(&text);
        measure(
            &format!("verify, 1 KB strings, {label}"),
            document.len(),
            iterations,
            || {
                verify_content(black_box(&document), Mode::Mask)
                    .expect("JSON")
                    .findings
                    .len()
            },
        );
    }
    let clean = "The quick brown fox jumps over the lazy dog. ".repeat(1024 * 1024 / 45);
    measure("scan, prose without digits, 1 MB", clean.len(), 20, || {
        scan(black_box(&clean)).len()
    });
}
