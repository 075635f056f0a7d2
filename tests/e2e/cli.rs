//! The `warden` binary: calls with exit codes, and audit verification that
//! catches tampering in PostgreSQL.

use crate::fixtures;
use serde_json::json;

use crate::harness::{Harness, Store, output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn cli_calls_report_output_and_exit_codes() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let ok = host.cli(&[
        "call",
        "text.transform",
        r#"{"text":"ab","op":"upper"}"#,
        "--as",
        "alice",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&ok.stdout).unwrap(),
        json!({"text": "AB"})
    );

    let denied = host.cli(&[
        "call",
        "text.transform",
        r#"{"text":"ab","op":"upper"}"#,
        "--as",
        "nobody",
    ]);
    assert_eq!(denied.status.code(), Some(3));
    assert!(text(&denied.stderr).contains("policy-denied"));

    let invalid = host.cli(&["call", "text.transform", r#"{"text":1}"#, "--as", "alice"]);
    assert_eq!(invalid.status.code(), Some(4));

    let unknown_principal = host.cli(&["call", "text.transform", "{}", "--as", "mallory"]);
    assert_eq!(unknown_principal.status.code(), Some(2));
    assert!(text(&unknown_principal.stderr).contains("no principal `mallory`"));

    let tools = host.cli(&["tools"]);
    assert!(text(&tools.stdout).contains("text.transform"));
}

#[tokio::test]
async fn audit_verify_detects_edited_and_deleted_rows_in_postgres() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    for i in 0..5 {
        let response = host.transform("alice", &format!("n{i}"), "upper").await;
        output(&response);
    }
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
    assert!(text(&verify.stdout).contains("ok: 5 records in 1 chains verified"));

    let tail = host.cli(&["audit", "tail", "-n", "2"]);
    assert_eq!(text(&tail.stdout).lines().count(), 2);

    let db = host.postgres().await;
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM audit_records WHERE seq = 2")
        .fetch_one(&db)
        .await
        .unwrap();

    // Edit a row: the record's hash no longer matches.
    sqlx::query("UPDATE audit_records SET principal = 'mallory' WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = text(&verify.stdout);
    assert!(report.contains(&format!("record id {id} ")), "{report}");
    assert!(report.contains("edited"), "{report}");

    // Restore it, then delete it: the next record's link is broken.
    sqlx::query("UPDATE audit_records SET principal = 'alice' WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(host.cli(&["audit", "verify"]).status.code(), Some(0));
    sqlx::query("DELETE FROM audit_records WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = text(&verify.stdout);
    assert!(
        report.contains(&format!("record id {} ", id + 1)),
        "{report}"
    );
    assert!(report.contains("expected seq 2"), "{report}");

    // Deleting the newest record is caught by the chain head.
    sqlx::query("DELETE FROM audit_records WHERE seq >= 2")
        .execute(&db)
        .await
        .unwrap();
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        text(&verify.stdout).contains("deleted from its end"),
        "{}",
        text(&verify.stdout)
    );
}

#[tokio::test]
async fn plugins_inspect_shows_identity_and_capabilities_without_values() {
    let data = tempfile::tempdir().unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin(
            fixtures::FILES,
            &format!(
                "{{ directories = [{{ host = {}, guest = \"/data\", access = \"rw\" }}], \
                 env = {{ TOKEN = \"do-not-print\" }} }}",
                crate::harness::toml_path(data.path())
            ),
        )
        .start()
        .await;
    let inspect = host.cli(&["plugins", "inspect", "files"]);
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect.stderr));
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let plugin = &host.kernel.registry().plugins().next().unwrap();
    assert_eq!(report["component_sha256"], plugin.sha256.as_str());
    assert_eq!(report["tools"], json!(["files.list", "files.read"]));
    assert_eq!(
        report["requested"]["directories"],
        json!([{"guest": "/data", "access": "ro"}])
    );
    assert_eq!(report["granted"]["directories"][0]["access"], "rw");
    // Effective access is the lesser of requested (ro) and granted (rw).
    assert_eq!(
        report["effective"]["directories"],
        json!([{"guest": "/data", "access": "ro"}])
    );
    assert!(!text(&inspect.stdout).contains("do-not-print"));

    let missing = host.cli(&["plugins", "inspect", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no plugin `nope`"));
}
