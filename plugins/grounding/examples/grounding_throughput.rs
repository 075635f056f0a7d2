//! Time to check a 2 KB answer against 5 sources of 10 KB each, natively.
//!
//! ```text
//! cargo run --release -j 1 -p warden-grounding --example grounding_throughput
//! ```
//!
//! Every call starts from nothing, as each `verify` does in its fresh
//! instance: the sources' haystacks are built inside the timed call.

use std::hint::black_box;
use std::time::Instant;

use warden_grounding::check;
use warden_plugin_sdk::verifier::Source;

/// Sentences a source is made of; numbers and phrases the answer quotes.
const SOURCE_PIECES: &[&str] = &[
    "Revenue grew 12% year over year to $4.2M in the third quarter. ",
    "Operating margin was 18.5%, up from 15.1% a year earlier. ",
    "Headcount reached 1,250 employees across 14 offices. ",
    "The CEO said: “This was our strongest quarter since 2019.” ",
    "Churn fell to 2.1% from 2.9% as fewer small customers cancelled. ",
    "The board approved a buyback of 300,000 shares at an average of $31.40. ",
    "Les résultats restent solides malgré un contexte difficile. ",
    "Customer satisfaction scored 87 out of 100 in the annual survey. ",
];

fn source(i: usize) -> Source {
    let mut body = String::new();
    let mut k = i;
    while body.len() < 10 * 1024 - 100 {
        body.push_str(SOURCE_PIECES[k % SOURCE_PIECES.len()]);
        k += 3;
    }
    let content = serde_json::json!({ "status": 200, "body": body }).to_string();
    Source {
        id: format!("7d9f0c1e-2b1a-4c3e-9f00-0a1b2c3d4e5{i}"),
        target_name: "fetch.get".to_string(),
        locator: Some(format!("http://127.0.0.1:8080/report/{i}")),
        digest: format!("{i:0>64}"),
        content: Some(content),
    }
}

fn answer() -> String {
    let sentences = [
        "Revenue grew 12% to $4.2M [source: 7d9f0c1e-2b1a-4c3e-9f00-0a1b2c3d4e50]. ",
        "Margins reached 18.5% from 15.1% [source: http://127.0.0.1:8080/report/1]. ",
        "The CEO called it “our strongest quarter since 2019” [source: 7d9f0c1e-2b1a-4c3e-9f00-0a1b2c3d4e52]. ",
        "Headcount is 1250 in 14 offices, and churn fell to 2.1% [source: 7d9f0c1e-2b1a-4c3e-9f00-0a1b2c3d4e53, 7d9f0c1e-2b1a-4c3e-9f00-0a1b2c3d4e54]. ",
        "Satisfaction scored 87 of 100. ",
        "Overall the quarter looks healthy, e.g. in retention and margins. ",
    ];
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 2 * 1024 {
        text.push_str(sentences[i % sentences.len()]);
        i += 1;
    }
    serde_json::json!({ "answer": text }).to_string()
}

fn main() {
    let sources: Vec<Source> = (0..5).map(source).collect();
    let content = answer();
    let iterations = 2000u32;
    let findings = check(&content, &sources).expect("a verdict").findings.len();
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(check(black_box(&content), black_box(&sources)).expect("a verdict"));
    }
    let per_call = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    let source_bytes: usize = sources
        .iter()
        .filter_map(|s| s.content.as_ref())
        .map(String::len)
        .sum();
    let started = Instant::now();
    for _ in 0..iterations {
        for s in &sources {
            black_box(warden_grounding::sources::Haystack::build(
                s.content.as_deref().unwrap_or(""),
            ));
        }
    }
    let build = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    println!(
        "answer {} bytes, {} sources ({} bytes): {findings} findings, {per_call:.1} µs per check \
         (building the sources' haystacks alone: {build:.1} µs)",
        content.len(),
        sources.len(),
        source_bytes
    );
}
