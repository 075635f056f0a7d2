//! Swallowed refusals and log injection (issue 12, class 11): a refusal the
//! plugin hides is still in the call's audit record, and a plugin's log
//! messages cannot forge host log lines.

use crate::fixtures;
use serde_json::{Value, json};

use crate::harness::{ALLOW_ALL, Harness, Host, Store, TestServer, manifest, output, toml_path};

/// `[plugins.hostile-egress]` allowed to reach `server`, without its directory.
fn hostile_egress(harness: Harness, server: &TestServer) -> Harness {
    harness.plugin_entry(
        "hostile-egress",
        &format!(
            "manifest = {}\nallow_reduced = true\ngrants = {}",
            toml_path(&manifest(fixtures::HOSTILE_EGRESS)),
            server.grant()
        ),
    )
}

async fn host(store: Store, server: &TestServer) -> Host {
    hostile_egress(Harness::new(store), server)
        .policy(ALLOW_ALL)
        .start()
        .await
}

async fn swallowed_refusals_are_recorded(store: Store) {
    let server = TestServer::start("granted").await;
    let elsewhere = TestServer::start("never").await;
    let host = host(store, &server).await;
    // A clean call first: its record has no refusals and hashes as before.
    let clean = host
        .call(
            "root",
            "hostile-egress.request",
            json!({"method": "GET", "authority": server.addr.to_string()}),
        )
        .await;
    assert_eq!(output(&clean)["status"], 200);
    assert!(host.record(&clean.call_id).await.record.refusals.is_empty());

    // Refused, swallowed: three spellings of a destination that is not granted.
    let refused = [
        elsewhere.addr.to_string(),
        format!("localhost:{}", elsewhere.addr.port()),
        format!("user@{}", server.addr),
    ];
    for authority in &refused {
        let response = host
            .call(
                "root",
                "hostile-egress.request",
                json!({"method": "GET", "authority": authority, "swallow": true}),
            )
            .await;
        let out = output(&response);
        assert!(out["swallowed"].is_string(), "{out}");
        let record = host.record(&response.call_id).await.record;
        assert_eq!(record.outcome, "ok");
        assert_eq!(record.refusals.len(), 1, "{:?}", record.refusals);
        assert!(
            record.refusals[0].contains("is not granted")
                || record.refusals[0].contains("userinfo"),
            "{:?}",
            record.refusals
        );
    }
    assert_eq!(elsewhere.hits(), 0);

    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert_eq!(report.failure, None);
    assert!(report.records >= 4);
}

#[tokio::test]
async fn a_swallowed_refusal_is_in_the_audit_record_sqlite() {
    swallowed_refusals_are_recorded(Store::Sqlite).await;
}

#[tokio::test]
async fn a_swallowed_refusal_is_in_the_audit_record_postgres() {
    swallowed_refusals_are_recorded(Store::Postgres).await;
}

#[tokio::test]
async fn a_refusal_the_plugin_reports_is_recorded_too() {
    let server = TestServer::start("granted").await;
    let host = host(Store::Sqlite, &server).await;
    let response = host
        .call(
            "root",
            "hostile-egress.request",
            json!({"method": "GET", "authority": "127.0.0.1:1"}),
        )
        .await;
    let error = crate::harness::error(&response, warden::ErrorCode::CapabilityDenied);
    assert!(
        error.message.contains("is not granted"),
        "{}",
        error.message
    );
    let record = host.record(&response.call_id).await.record;
    assert_eq!(record.outcome, "capability-denied");
    assert_eq!(
        record.refusals,
        vec!["origin http://127.0.0.1:1 is not granted".to_string()]
    );
}

/// What a plugin logs reaches the host's log as one escaped, bounded field:
/// no new lines, no terminal escapes, no forged host records.
#[tokio::test]
pub(crate) async fn plugin_log_messages_cannot_forge_host_log_lines() {
    let server = TestServer::start("granted").await;
    let host = host(Store::Sqlite, &server).await;
    let forged = "2020-01-01T00:00:00.000000Z  INFO warden::kernel: FORGED";
    let messages = [
        format!("ok\n{forged} admin logged in"),
        format!("ok\r\n{forged} crlf"),
        format!("ok\r{forged} carriage return"),
        format!("\x1b[2K\x1b[1A{forged} ansi rewrite"),
        format!("INFO warden: FORGED prefix\u{2028}{forged} line separator"),
        format!("nul\0{forged} and bell\x07"),
        "y".repeat(100_000),
    ];
    let args = json!({ "messages": messages }).to_string();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--config")
        .arg(&host.config_path)
        .args(["call", "hostile-egress.log", &args, "--as", "root"])
        .env("NO_COLOR", "1")
        .env("WARDEN_LOG", "info")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let log = String::from_utf8(run.stderr).unwrap();
    assert!(
        !log.contains('\x1b'),
        "terminal escape reached the log:\n{log}"
    );
    assert!(
        !log.contains('\r'),
        "carriage return reached the log:\n{log}"
    );
    assert!(!log.contains('\0') && !log.contains('\x07'));
    assert!(!log.contains('\u{2028}'));
    let plugin_lines = log
        .lines()
        .filter(|l| l.contains("plugin_message="))
        .count();
    assert_eq!(plugin_lines, messages.len(), "{log}");
    for line in log.lines() {
        assert!(
            !line.starts_with("2020-01-01") && !line.starts_with("INFO"),
            "a plugin forged a log line: {line}"
        );
        if line.contains("FORGED") {
            assert!(line.contains("plugin_message="), "{line}");
        }
        assert!(line.len() < 8 * 1024, "a log line of {} bytes", line.len());
    }
    assert!(log.contains(r"ok\n2020-01-01"), "{log}");
    assert!(log.contains("[truncated]"), "{log}");
}

/// With `--log-format json` every line is one JSON object; what a plugin
/// logs is one field of it, whatever it contains, and carries the id of the
/// call that logged it.
#[tokio::test]
async fn json_logs_carry_the_call_id_and_keep_plugin_messages_in_their_field() {
    let server = TestServer::start("granted").await;
    let host = host(Store::Sqlite, &server).await;
    let forged =
        r#"{"timestamp":"2020-01-01T00:00:00Z","level":"INFO","fields":{"message":"FORGED"}}"#;
    let messages = [
        format!("ok\n{forged}"),
        format!("\"}}}}\n{forged}"),
        format!("ok\r\n{forged}"),
    ];
    let args = json!({ "messages": messages }).to_string();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--config")
        .arg(&host.config_path)
        .args(["--log-format", "json"])
        .args(["call", "hostile-egress.log", &args, "--as", "root"])
        .env("WARDEN_LOG", "info")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let log = String::from_utf8(run.stderr).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let call_id = log
        .lines()
        .find_map(|l| l.strip_prefix("call ")?.strip_suffix(": ok"))
        .unwrap_or_else(|| panic!("no call id printed: {log}"));
    let plugin_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["plugin_message"].is_string())
        .collect();
    assert_eq!(plugin_lines.len(), messages.len(), "{log}");
    for line in &plugin_lines {
        assert_eq!(line["span"]["call_id"], call_id, "{line}");
        assert_eq!(line["fields"]["plugin"], "hostile-egress", "{line}");
        assert!(
            !line["fields"]["plugin_message"]
                .as_str()
                .unwrap()
                .contains('\n')
        );
    }
    for line in &lines {
        assert_ne!(line["timestamp"], "2020-01-01T00:00:00Z", "forged: {line}");
    }
}

/// An upstream MCP server's stderr reaches the host log escaped too.
#[tokio::test]
async fn upstream_stderr_cannot_forge_host_log_lines() {
    let script = format!(
        "printf 'ok\\r2020-01-01T00:00:00.000000Z  INFO warden::kernel: FORGED\\033[2J\\n' >&2; exec {} {} stdio",
        toml_path(&crate::mcp::python()).trim_matches('"'),
        toml_path(&crate::harness::repo().join("tests/e2e/notes_server.py")).trim_matches('"'),
    );
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy(ALLOW_ALL)
        .extra_config(&format!(
            "[upstreams.notes]\ncommand = [\"sh\", \"-c\", {script:?}]\n"
        ))
        .start()
        .await;
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--config")
        .arg(&host.config_path)
        .args(["call", "notes.stats", "{}", "--as", "root"])
        .env("NO_COLOR", "1")
        .env("WARDEN_LOG", "info")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let log = String::from_utf8(run.stderr).unwrap();
    assert!(log.contains("FORGED"), "{log}");
    assert!(!log.contains('\x1b') && !log.contains('\r'), "{log}");
    for line in log.lines() {
        assert!(!line.starts_with("2020-01-01"), "forged: {line}");
    }
}
