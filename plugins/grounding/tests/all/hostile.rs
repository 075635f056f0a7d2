//! Hostile input: no panics, at most 64 findings, every range non-empty and
//! on character boundaries, and bounded time.

use std::time::{Duration, Instant};

use warden_grounding::{MAX_FINDINGS, check};
use warden_plugin_sdk::verifier::{Severity, Source, Verdict};

use crate::{evicted, source};

const ID: &str = "7d9f0c1e-2b1a-4c3e-9f00-0a1b2c3d4e5f";

fn sources() -> Vec<Source> {
    vec![
        source(
            ID,
            Some("http://127.0.0.1:8080/report"),
            r#"{"body":"Revenue grew 12% to $1.2M. “Best quarter.”"}"#,
        ),
        evicted("e", "{}"),
    ]
}

/// Checks `answer` and the soundness of the verdict.
fn sound(answer: &str, sources: &[Source]) -> Verdict {
    let content = serde_json::json!({ "answer": answer }).to_string();
    let started = Instant::now();
    let v = check(&content, sources).expect("a verdict");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(v.findings.len() <= MAX_FINDINGS);
    for f in &v.findings {
        let l = f.location.as_ref().expect("a location");
        let (start, end) = (l.start as usize, l.end as usize);
        assert!(start < end && end <= answer.len(), "{f:?}");
        assert!(
            answer.is_char_boundary(start) && answer.is_char_boundary(end),
            "{f:?}"
        );
        assert!((0.0..=1.0).contains(&f.score));
        assert!(f.kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    }
    v
}

#[test]
fn huge_strings_and_many_markers() {
    sound(&"Revenue grew 12% and more. ".repeat(40_000), &sources());
    sound(&"x".repeat(2 << 20), &sources());
    let v = sound(&"[source: nope] ".repeat(50_000), &sources());
    assert_eq!(v.findings.len(), MAX_FINDINGS);
    sound(&"[source:".repeat(100_000), &sources());
    sound(&"[a](http://".repeat(100_000), &sources());
    sound(&"[[[[]]]](((".repeat(100_000), &sources());
    sound(&format!("[source: {}]", "a,".repeat(100_000)), &sources());
    sound(
        &format!("[source: {ID}] 1 2 3 “a b c” ").repeat(20_000),
        &sources(),
    );
}

#[test]
fn the_most_severe_findings_are_kept() {
    let mut answer = "Revenue grew 15%. ".repeat(200);
    answer.push_str("Costs fell [source: nope].");
    let v = sound(&answer, &sources());
    assert_eq!(v.findings.len(), MAX_FINDINGS);
    assert!(v.findings.iter().any(|f| f.severity == Severity::High));
}

#[test]
fn unterminated_and_nested_brackets_and_quotes() {
    for answer in [
        "[source:",
        "[source: ",
        "Revenue grew 12% [source:",
        "[source: [source: x]]",
        "[[source: x]",
        "[source: x\n]",
        "[text](http://",
        "[text](http://x",
        "[](http://127.0.0.1:8080/report)",
        "“unterminated quote of many words here",
        "\"unterminated",
        "‘open ’s ’t",
        "“““““““““““““““““",
        "”””””",
        "\"\"\"\"\"",
        "...!!!???...",
        "1.",
        "$",
        "1,",
        "1,000,",
        "0.0.0.0.0.0.0",
        "99999999999999999999999999999999999999.99999999999999999999 billion",
        "é.😀.€1,2€.”.’",
        "\u{0}\u{1f}[source:\u{1f}]",
        "",
        " ",
        "\n\n\n",
    ] {
        sound(answer, &sources());
        sound(&format!("{answer} [source: {ID}]"), &sources());
        sound(&format!("[source: e] {answer}"), &sources());
    }
}

#[test]
fn random_noise() {
    const PIECES: &[&str] = &[
        "[",
        "]",
        "(",
        ")",
        "source",
        ":",
        "source:",
        "[source: ",
        ",",
        " ",
        "\n",
        ".",
        "!",
        "?",
        "1",
        "12",
        "3.5",
        "1,200",
        "%",
        "$",
        "M",
        "“",
        "”",
        "\"",
        "‘",
        "’",
        "…",
        "e.g.",
        "http://127.0.0.1:8080/report",
        ID,
        "é",
        "😀",
        "word",
        "Dr",
        "#",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let list = sources();
    for _ in 0..5_000 {
        let len = (next() % 60) as usize;
        let answer: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        sound(&answer, &list);
    }
}

#[test]
fn source_text_past_the_budget_is_unavailable_not_scanned() {
    let big = serde_json::json!({ "text": "Revenue grew 12%. ".repeat(150_000) }).to_string();
    assert!(big.len() > 2 << 20);
    let list = vec![
        source("a", None, &big),
        source("b", None, &big),
        source("c", None, &big),
    ];
    let v = sound(
        "Revenue grew 12% [source: a]. It grew 12% [source: b]. And 12% [source: c].",
        &list,
    );
    let kinds: Vec<&str> = v.findings.iter().map(|f| f.kind.as_str()).collect();
    // a fits in the 4 MiB, b does not once a is read, nor c.
    assert_eq!(kinds, ["source-unavailable", "source-unavailable"]);
    // Garbage in a source is one string.
    let list = vec![source("g", None, "not json {{{ 12%")];
    assert!(sound("It grew 12% [source: g].", &list).findings.is_empty());
}
