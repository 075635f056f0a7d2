//! Throughput of the verifier on clean mixed text (prose, documentation,
//! logs, code, JSON, other languages, emoji) and on dense attacks.
//!
//! `cargo run --release -p warden-injection --example injection_throughput` (in `plugins/`).

use std::time::{Duration, Instant};

/// Pieces of clean text, many with words the rules' prefilter reacts to
/// (`system`, `ignore`, `instructions`, `now`, `new`, `send`, `mode`).
const PIECES: &[&str] = &[
    "The quarterly report shows revenue grew 12% while costs stayed flat. The team shipped the new billing pipeline and retired two legacy services; next quarter focuses on reliability.\n",
    "To install, follow the instructions in the README. You can ignore the warning about optional dependencies if you are on Linux. From now on, releases are signed.\n",
    "2026-11-30T12:00:01Z INFO request_id=3f2b8c1e-9d4a-4f6b-8e2a-1c7d5e9f0a3b method=GET path=/v1/orders/4412 status=200 duration_ms=12\n",
    "fn handle(req: Request) -> Result<Response, Error> {\n    let key = cache_key(&req.path);\n    if let Some(hit) = cache.get(&key) { return Ok(hit); }\n    Ok(Response::new(upstream.fetch(&req)?))\n}\n",
    "{\"id\": \"a81bc81b-dead-4e5d-abff-90865d1e13b1\", \"name\": \"widget\", \"price\": 19.99, \"tags\": [\"blue\", \"large\"]}\n",
    "System requirements: 8 GB RAM and 20 GB of disk. The system administrator will send the new access instructions by email.\n",
    "Die Anweisungen zur Installation finden Sie im Handbuch. Veuillez suivre les instructions ci-dessous. Siga las instrucciones del fabricante.\n",
    "Our family trip 👨\u{200D}👩\u{200D}👧 was great 🎉 — the hotel (שלום, مرحبا) had a view of the lake.\n",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.\n",
    "Enable developer mode in the settings to sideload apps; the assistant manager approves new hardware requests.\n",
    "commit 4e1f2a9c7b3d8e6f0a5b2c1d9e8f7a6b5c4d3e2f\nAuthor: Dev <dev@corp.example>\n\n    Fix race in the scheduler; see https://github.com/acme/app/pull/812\n",
    "Security teams worry about prompt injection: content an assistant reads can carry instructions. Guardrails and least privilege help.\n",
];

/// Attacks, one about every 200 bytes: the evaluation set's positives.
fn dense_text(bytes: usize) -> String {
    let cases: Vec<String> = include_str!("../eval/cases.jsonl")
        .lines()
        .filter_map(|line| {
            let case: serde_json::Value = serde_json::from_str(line).ok()?;
            case["injection"]
                .as_bool()?
                .then(|| case["text"].as_str().map(str::to_string))?
        })
        .collect();
    let mut text = String::with_capacity(bytes + 4096);
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&cases[i % cases.len()]);
        text.push('\n');
        i += 7;
    }
    text.truncate(text.floor_char_boundary(bytes));
    text
}

fn mixed_text(bytes: usize, seed: usize) -> String {
    let mut text = String::with_capacity(bytes + 512);
    let mut i = seed;
    while text.len() < bytes {
        text.push_str(PIECES[i % PIECES.len()]);
        i = i * 7 + 3;
    }
    text.truncate(text.floor_char_boundary(bytes));
    text
}

fn measure(label: &str, content: &str, min_time: Duration) {
    let kb = content.len() as f64 / 1024.0;
    let mut times = Vec::new();
    let mut findings = 0;
    let started = Instant::now();
    while times.len() < 5 || started.elapsed() < min_time {
        let run = Instant::now();
        findings = warden_injection::verdict(content)
            .expect("a verdict")
            .findings
            .len();
        times.push(run.elapsed().as_secs_f64());
    }
    // The machine is shared: the median and the best run say more than the mean.
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let best = times[0];
    println!(
        "{label:<36} {kb:>7.1} KB  median {:>8.3} ms = {:>6.2} µs/KB ({:>6.1} µs per 10 KB)  best {:>6.2} µs/KB  ({findings} findings, {} runs)",
        median * 1e3,
        median * 1e6 / kb,
        median * 1e7 / kb,
        best * 1e6 / kb,
        times.len(),
    );
}

fn main() {
    let started = Instant::now();
    warden_injection::scan::scanner();
    println!(
        "{} rules compiled with the prefilter in {:.1} ms",
        warden_injection::rules::RULES.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let min_time = Duration::from_secs(2);
    let clean = mixed_text(10 * 1024, 1);
    // What the clean text gives: low scores, below the threshold.
    for m in warden_injection::scan(&clean) {
        println!(
            "  clean text: {} ({}) score {:.2}",
            m.kind.as_str(),
            m.rule,
            m.score
        );
    }
    // The shared build machine's speed varies several-fold with load: a
    // trivial pass over the same text puts the figures in proportion.
    let started = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(std::hint::black_box(&clean).to_ascii_lowercase());
    }
    println!(
        "calibration: to_ascii_lowercase on the 10 KB text takes {:.1} µs",
        started.elapsed().as_secs_f64() * 1e3
    );
    let small = serde_json::to_string(&clean).unwrap();
    measure("10 KB clean mixed text (one string)", &small, min_time);
    let ascii: String = mixed_text(10 * 1024, 1)
        .chars()
        .filter(char::is_ascii)
        .collect();
    measure(
        "10 KB clean ASCII text (one string)",
        &serde_json::to_string(&ascii).unwrap(),
        min_time,
    );
    let large = serde_json::to_string(&mixed_text(1024 * 1024, 2)).unwrap();
    measure("1 MB clean mixed text (one string)", &large, min_time);
    let mut object = serde_json::Map::new();
    for i in 0..1024 {
        object.insert(format!("field_{i}"), mixed_text(1024, i).into());
    }
    let document = serde_json::Value::Object(object).to_string();
    measure("1 MB JSON object (1024 fields)", &document, min_time);
    let dense = serde_json::to_string(&dense_text(1024 * 1024)).unwrap();
    measure("1 MB dense attacks (one string)", &dense, min_time);
}
