//! The redaction mode comes from `WARDEN_PII_REDACTION`. One test in its own
//! binary: it changes the process environment.

use warden_pii::Pii;
use warden_plugin_sdk::verifier::{Guest, Stage, Subject};

fn subject(content: &str) -> Subject {
    Subject {
        stage: Stage::Output,
        target_kind: "tool".to_string(),
        target_name: "crm.lookup".to_string(),
        content: content.to_string(),
        tenant: "acme".to_string(),
        session_labels: Vec::new(),
        contracts: Vec::new(),
        sources: Vec::new(),
    }
}

fn replacement(content: &str) -> Result<String, String> {
    let verdict = Pii::verify(subject(content))?;
    Ok(verdict.redactions[0].replacement.clone())
}

#[test]
fn mode_from_the_environment() {
    let content = r#"{"card":"4539 1488 0343 6467"}"#;
    // SAFETY: this binary has this one test; nothing else reads the environment.
    unsafe { std::env::remove_var("WARDEN_PII_REDACTION") };
    assert_eq!(replacement(content).unwrap(), "**** **** **** 6467");
    unsafe { std::env::set_var("WARDEN_PII_REDACTION", "placeholder") };
    assert_eq!(replacement(content).unwrap(), "<PAYMENT_CARD_1>");
    unsafe { std::env::set_var("WARDEN_PII_REDACTION", "hash") };
    let hashed = replacement(content).unwrap();
    assert!(hashed.starts_with("<payment-card:") && hashed.len() == "<payment-card:>".len() + 12);
    unsafe { std::env::set_var("WARDEN_PII_REDACTION", "rot13") };
    let err = replacement(content).unwrap_err();
    assert!(err.contains("WARDEN_PII_REDACTION"), "{err}");
    assert!(err.contains("mask") && err.contains("hash") && err.contains("placeholder"));
    // A bad mode fails even when there is nothing to redact.
    assert!(Pii::verify(subject(r#""nothing here""#)).is_err());
    // And content that is not JSON is an error in any mode.
    unsafe { std::env::set_var("WARDEN_PII_REDACTION", "mask") };
    assert!(Pii::verify(subject("not json")).is_err());
}
