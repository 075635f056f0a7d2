//! Integration tests, one binary: the rules (`rules`), hostile input
//! (`hostile`) and the labelled evaluation set (`eval`).

mod eval;
mod hostile;
mod rules;

use sha2::{Digest, Sha256};
use warden_plugin_sdk::verifier::{Finding, Source, Verdict};

/// A source with `content` (JSON text), its digest computed as the host does.
pub fn source(id: &str, locator: Option<&str>, content: &str) -> Source {
    Source {
        id: id.to_string(),
        target_name: "fetch.get".to_string(),
        locator: locator.map(str::to_string),
        digest: hex(&Sha256::digest(content.as_bytes())),
        content: Some(content.to_string()),
    }
}

/// A source whose content was evicted.
pub fn evicted(id: &str, content: &str) -> Source {
    Source {
        content: None,
        ..source(id, None, content)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The verdict on one answer string.
pub fn verdict(answer: &str, sources: &[Source]) -> Verdict {
    let content = serde_json::json!({ "answer": answer }).to_string();
    warden_grounding::check(&content, sources).expect("a verdict")
}

/// `(kind, matched text)` of each finding of a verdict on one answer string.
pub fn kinds<'a>(answer: &'a str, sources: &[Source]) -> Vec<(String, &'a str)> {
    let v = verdict(answer, sources);
    v.findings
        .iter()
        .map(|f| (f.kind.clone(), matched(answer, f)))
        .collect()
}

pub fn matched<'a>(answer: &'a str, f: &Finding) -> &'a str {
    let l = f.location.as_ref().expect("a location");
    &answer[l.start as usize..l.end as usize]
}
