//! The audit trail under hostile records and store faults: one bad record
//! fails alone, a torn spool line loses nothing, processes never drain each
//! other's spool, verification of a live trail raises no false alarm, a
//! stalled or unreachable store is bounded, and signed checkpoints expose
//! truncation. Faults are made inside each test's own database (triggers,
//! `LOCK TABLE`) or with a TCP relay in front of PostgreSQL that the test can
//! cut: the shared server is never stopped.

use crate::fixtures;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::{CallRequest, CallResponse, ErrorCode, Kernel};

use crate::harness::{
    Harness, Host, Relay, Server, Store, TestDb, http, output, sample_record, token,
};

/// Calls as `principal` with this session.
async fn call_in(
    kernel: &Kernel,
    principal: &str,
    tool: &str,
    args: Value,
    session: Option<&str>,
) -> CallResponse {
    kernel
        .call(CallRequest {
            principal: kernel.principals().by_id(principal).unwrap(),
            tool: tool.to_string(),
            args,
            session: session.map(str::to_string),
            contract: None,
            trace: None,
        })
        .await
}

fn transform(text: &str) -> Value {
    json!({"text": text, "op": "upper"})
}

/// Makes the test's database refuse audit records on demand: every record
/// while `refuse_all` is on (an error that is not about the data: the store
/// counts as unavailable), and any record of the principal `bob` (the
/// poisoner) with a data exception (SQLSTATE 22000), as PostgreSQL does for a NUL.
async fn install_faults(host: &Host) -> sqlx::PgPool {
    let db = host.postgres().await;
    sqlx::raw_sql(
        "CREATE TABLE fault_switch (refuse_all BOOLEAN NOT NULL);
         INSERT INTO fault_switch VALUES (false);
         CREATE FUNCTION fault_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.principal = 'bob' THEN
             RAISE EXCEPTION 'poisoned record' USING ERRCODE = '22000';
           END IF;
           IF (SELECT refuse_all FROM fault_switch) THEN
             RAISE EXCEPTION 'the store refuses writes';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER fault_refuse BEFORE INSERT ON audit_records
           FOR EACH ROW EXECUTE FUNCTION fault_refuse();",
    )
    .execute(&db)
    .await
    .unwrap();
    db
}

async fn refuse_all(db: &sqlx::PgPool, on: bool) {
    sqlx::query("UPDATE fault_switch SET refuse_all = $1")
        .bind(on)
        .execute(db)
        .await
        .unwrap();
}

fn spool_setting(dir: &std::path::Path) -> String {
    format!(
        "spool = {}",
        crate::harness::toml_path(&dir.join("audit.spool"))
    )
}

/// Total bytes in the spool files (the configured one and its siblings).
fn spooled_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("audit.spool") && !name.ends_with(".rejected")
        })
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

async fn assert_verifies(host: &Host) {
    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert_eq!(report.failure, None, "{report:?}");
}

// ---------------------------------------------------------------- 1. poison

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_any_string_field_is_stored_escaped_and_denies_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let read_only = tempfile::tempdir().unwrap();
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .plugin(fixtures::TEXT, "{}")
            .plugin(
                fixtures::HOSTILE,
                &crate::harness::hostile_grants(dir.path(), read_only.path(), ""),
            )
            .policy(
                "package warden.authz\n\n\
                 default decision := {\"allow\": true, \"reasons\": []}\n\
                 decision := {\"allow\": false, \"reasons\": [input.args.text]} if input.args.text == \"deny\\u0000me\"\n",
            )
            .audit_settings("store_policy_input = true")
            .start()
            .await,
    );
    // Clean calls from other principals share batches with the poisoned ones.
    let clean: Vec<_> = (0..8)
        .map(|w| {
            let host = host.clone();
            tokio::spawn(async move {
                let mut responses = Vec::new();
                for i in 0..25 {
                    responses.push(
                        host.call("bob", "text.transform", transform(&format!("c{w}-{i}")))
                            .await,
                    );
                }
                responses
            })
        })
        .collect();
    let kernel = &host.kernel;
    // A NUL in the session, the tool name, the arguments (and so the policy
    // input), a policy reason, and a plugin's error message.
    let session = call_in(
        kernel,
        "alice",
        "text.transform",
        transform("x"),
        Some("s\u{0}1"),
    )
    .await;
    let tool = call_in(kernel, "alice", "text.trans\u{0}form", transform("x"), None).await;
    let args = call_in(
        kernel,
        "alice",
        "text.transform",
        transform("a\u{0}b"),
        None,
    )
    .await;
    let reason = call_in(
        kernel,
        "alice",
        "text.transform",
        transform("deny\u{0}me"),
        None,
    )
    .await;
    let plugin_error = call_in(
        kernel,
        "alice",
        "hostile.read_file",
        json!({"path": "/data/ro/x\u{0}y"}),
        None,
    )
    .await;
    // A session id with a NUL is refused and stored only as its digest.
    crate::harness::error(&session, ErrorCode::InvalidRequest);
    output(&args);
    crate::harness::error(&tool, ErrorCode::UnknownTool);
    crate::harness::error(&reason, ErrorCode::PolicyDenied);
    assert!(plugin_error.result.is_err());
    assert_ne!(
        plugin_error.result.as_ref().unwrap_err().code,
        ErrorCode::AuditUnavailable
    );
    for task in clean {
        for response in task.await.unwrap() {
            output(&response);
        }
    }
    let stored = host.record(&session.call_id).await;
    let stored = stored.record.session.unwrap();
    assert!(stored.starts_with("invalid:"), "{stored}");
    assert_eq!(
        host.record(&tool.call_id).await.record.tool,
        "text.trans\\u0000form"
    );
    assert_eq!(
        host.record(&reason.call_id).await.record.reasons,
        vec!["deny\\u0000me".to_string()]
    );
    let failed = host.record(&plugin_error.call_id).await;
    assert!(
        failed
            .record
            .error
            .as_deref()
            .unwrap()
            .contains("x\\u0000y"),
        "{failed:?}"
    );
    // 200 clean calls, 5 poisoned ones, and the intent record of the
    // hostile call (its plugin holds a read-write grant: it has side effects).
    assert_eq!(host.records().await.len(), 206);

    // Every string field at once, straight through the writer.
    let mut record = sample_record("every-field".into());
    let nul = || "v\u{0}l".to_string();
    record.principal = nul();
    record.tenant = nul();
    record.session = Some(nul());
    record.tool = nul();
    record.plugin = Some(nul());
    record.plugin_sha256 = Some(nul());
    record.upstream = Some(nul());
    record.policy_hash = nul();
    record.decision = nul();
    record.reasons = vec![nul(), nul()];
    record.args_digest = nul();
    record.outcome = nul();
    record.output_digest = Some(nul());
    record.error = Some(nul());
    record.shadow = Some(nul());
    record.policy_input = Some(nul());
    host.kernel.audit().append(record).await.unwrap();
    let mut call_id = sample_record("call\u{0}id".to_string());
    // Too long for a b-tree entry, and incompressible.
    call_id.session = Some(
        (0..160)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect(),
    );
    host.kernel.audit().append(call_id).await.unwrap();
    let stored = host.record("every-field").await;
    assert!(!format!("{stored:?}").contains("\\0"), "{stored:?}");
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test]
async fn a_nul_over_http_and_mcp_is_recorded_and_the_host_keeps_serving() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let server = Server::start(&host).await;
    let invoke = |tool: &str, body: Value| {
        let (addr, tool) = (server.addr.clone(), tool.to_string());
        async move {
            http(
                &addr,
                "POST",
                &format!("/v1/tools/{tool}/invoke"),
                Some(&token("alice")),
                &body.to_string(),
            )
            .await
            .unwrap()
        }
    };
    let (status, body) = invoke(
        "text.transform",
        json!({"args": transform("x"), "session": "a\u{0}b"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid-request");
    let (status, body) = invoke("text%00transform", json!({"args": transform("x")})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown-tool");
    let unknown = body["call_id"].as_str().unwrap().to_string();
    let (status, _) = invoke("text.transform", json!({"args": transform("after")})).await;
    assert_eq!(status, 200);
    assert_eq!(
        host.record(&unknown).await.record.tool,
        "text\\u0000transform"
    );

    let mut mcp = crate::harness::StdioSession::start(&host).await;
    mcp.send_line(
        &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "text.trans\u{0}form", "arguments": transform("x")}})
        .to_string(),
    )
    .await;
    let answer = mcp.response().await;
    assert!(
        answer.get("error").is_some() || answer["result"]["isError"] == true,
        "{answer}"
    );
    let after = mcp.call_transform(8).await;
    assert!(
        after.get("result").is_some() && after["result"]["isError"] != true,
        "the session keeps serving: {after}"
    );
    drop(server);
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_store_refuses_fails_alone_and_the_rest_of_its_batch_commits() {
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .plugin(fixtures::TEXT, "{}")
            .start()
            .await,
    );
    let _db = install_faults(&host).await;
    let tasks: Vec<_> = (0..12)
        .map(|w| {
            let host = host.clone();
            tokio::spawn(async move {
                let mut responses = Vec::new();
                for i in 0..25 {
                    let n = w * 25 + i;
                    let session = if n % 100 == 7 { "poison" } else { "fine" };
                    let principal = if session == "poison" { "bob" } else { "alice" };
                    let response = call_in(
                        &host.kernel,
                        principal,
                        "text.transform",
                        transform(&format!("{n}")),
                        None,
                    )
                    .await;
                    responses.push((session, response));
                }
                responses
            })
        })
        .collect();
    let mut answered = Vec::new();
    for (session, response) in futures_flatten(tasks).await {
        if session == "poison" {
            let e = crate::harness::error(&response, ErrorCode::AuditUnavailable);
            assert!(
                !e.message.contains("poisoned record"),
                "the store's error is not passed on: {e}"
            );
        } else {
            output(&response);
            answered.push(response.call_id);
        }
    }
    assert_eq!(answered.len(), 297);
    crate::harness::assert_recorded(&host, &answered).await;
    assert_eq!(host.records().await.len(), 297);
    assert_verifies(&host).await;
}

#[tokio::test]
async fn a_spooled_record_the_store_refuses_is_set_aside_and_never_blocks_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .audit_settings(&spool_setting(dir.path()))
        .start()
        .await;
    let db = install_faults(&host).await;
    refuse_all(&db, true).await;
    let mut answered = Vec::new();
    for i in 0..10 {
        let principal = if i == 4 { "bob" } else { "alice" };
        let response = call_in(
            &host.kernel,
            principal,
            "text.transform",
            transform(&format!("{i}")),
            None,
        )
        .await;
        output(&response);
        if i != 4 {
            answered.push(response.call_id);
        }
    }
    assert!(spooled_bytes(dir.path()) > 0);
    refuse_all(&db, false).await;
    // The drain runs within the back-off (at most 5 s); later calls then go straight to the store.
    let deadline = Instant::now() + Duration::from_secs(15);
    while spooled_bytes(dir.path()) > 0 && Instant::now() < deadline {
        let probe = host.transform("alice", "probe", "upper").await;
        output(&probe);
        answered.push(probe.call_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        spooled_bytes(dir.path()),
        0,
        "the spool drained past the refused record"
    );
    crate::harness::assert_recorded(&host, &answered).await;
    let rejected = std::fs::read_to_string(dir.path().join("audit.spool.rejected")).unwrap();
    assert_eq!(rejected.lines().count(), 1, "{rejected}");
    assert!(rejected.contains("poisoned record"), "{rejected}");
    // The chain honestly shows the gap the refused record left.
    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert!(
        report.failure.as_deref().unwrap_or("").contains("seq 4"),
        "{report:?}"
    );
}

// ---------------------------------------------------- 2. torn line, restart

#[tokio::test]
async fn a_torn_spool_line_and_a_restart_lose_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let db = install_faults(&host).await;
    refuse_all(&db, true).await;
    // Three successive lives of a host with a spool, in this process.
    let mut config = warden::config::Config::load(&host.config_path).unwrap();
    config.audit.spool = Some(dir.path().join("audit.spool"));
    let mut answered = Vec::new();
    // First life: records spooled, then a crash mid-append tears the last line.
    {
        let first = Kernel::start(&config).await.unwrap();
        for i in 0..20 {
            answered.push(
                call_in(
                    &first,
                    "alice",
                    "text.transform",
                    transform(&format!("a{i}")),
                    None,
                )
                .await,
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // its writer lets go of the spool
    {
        use std::io::Write;
        let mut spool = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("audit.spool"))
            .unwrap();
        spool
            .write_all(br#"{"host":"torn","row":{"id":0,"chain_id":"#)
            .unwrap();
    }
    // Second life, the store still refusing: new records follow the torn line.
    {
        let second = Kernel::start(&config).await.unwrap();
        for i in 0..20 {
            answered.push(
                call_in(
                    &second,
                    "alice",
                    "text.transform",
                    transform(&format!("b{i}")),
                    None,
                )
                .await,
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answered: Vec<String> = answered
        .iter()
        .map(|r| {
            output(r);
            r.call_id.clone()
        })
        .collect();
    // Third life, the store back: everything drains.
    refuse_all(&db, false).await;
    let third = Kernel::start(&config).await.unwrap();
    output(&call_in(&third, "alice", "text.transform", transform("c"), None).await);
    assert_eq!(spooled_bytes(dir.path()), 0);
    crate::harness::assert_recorded(&host, &answered).await;
    assert_verifies(&host).await;
}

// ------------------------------------------------ 3. two processes, one spool

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_spool_path_never_drain_each_others_records() {
    // `warden serve` (A) reaches PostgreSQL through a relay that fails, so it
    // spools under load; `warden call`s with the same spool path but a direct
    // URL (their own config) reach the store, slowed by a trigger, while A
    // keeps appending. A call must not drain, clear or take A's spool.
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::new().await;
    relay.up().await;
    let mut db = TestDb::create().await;
    let direct_url = db.url.clone();
    db.url = relay.url(&db.url);
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .database(db)
            .plugin(fixtures::TEXT, "{}")
            .audit_settings(&spool_setting(dir.path()))
            .start()
            .await,
    );
    let direct = sqlx::PgPool::connect(&direct_url).await.unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(0.003); RETURN NEW; END $$;
         CREATE TRIGGER slow_insert BEFORE INSERT ON audit_records
           FOR EACH ROW EXECUTE FUNCTION slow_insert();",
    )
    .execute(&direct)
    .await
    .unwrap();
    let relayed_config = std::fs::read_to_string(&host.config_path).unwrap();
    let direct_config = host.dir.path().join("direct.toml");
    std::fs::write(
        &direct_config,
        relayed_config.replace(&relay.url(&direct_url), &direct_url),
    )
    .unwrap();
    let server = Server::start(&host).await;
    relay.refuse();
    let running = Arc::new(AtomicBool::new(true));
    let load: Vec<_> = (0..4)
        .map(|w| {
            let (addr, running) = (server.addr.clone(), running.clone());
            tokio::spawn(async move {
                let mut answered = Vec::new();
                let mut i = 0;
                while running.load(Ordering::SeqCst) {
                    i += 1;
                    let body = json!({"args": transform(&format!("{w}-{i}"))}).to_string();
                    let (status, body) = http(
                        &addr,
                        "POST",
                        "/v1/tools/text.transform/invoke",
                        Some(&token("alice")),
                        &body,
                    )
                    .await
                    .unwrap();
                    assert_eq!(status, 200, "{body}");
                    answered.push(body["call_id"].as_str().unwrap().to_string());
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut answered = Vec::new();
    for i in 0..3 {
        let config = direct_config.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
                .arg("--config")
                .arg(&config)
                .args([
                    "call",
                    "text.transform",
                    &transform(&format!("cli{i}")).to_string(),
                    "--as",
                    "alice",
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let line = stderr.lines().find(|l| l.starts_with("call ")).unwrap();
        answered.push(line["call ".len()..].split(':').next().unwrap().to_string());
    }
    running.store(false, Ordering::SeqCst);
    for worker in load {
        answered.extend(worker.await.unwrap());
    }
    drop(server); // SIGKILL: what it spooled stays for the next process
    sqlx::query("DROP TRIGGER slow_insert ON audit_records")
        .execute(&direct)
        .await
        .unwrap();
    relay.up().await;
    // A new process with A's config takes over whatever is left.
    let config = warden::config::Config::load(&host.config_path).unwrap();
    let next = Kernel::start(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        output(&call_in(&next, "alice", "text.transform", transform("last"), None).await);
        if spooled_bytes(dir.path()) == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(spooled_bytes(dir.path()), 0);
    crate::harness::assert_recorded(&host, &answered).await;
    assert_verifies(&host).await;
}

// ----------------------------------------------------- 4. verify while live

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_no_false_alarm_while_calls_are_recorded() {
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .plugin(fixtures::TEXT, "{}")
            .start()
            .await,
    );
    output(&host.transform("alice", "first", "upper").await);
    let running = Arc::new(AtomicBool::new(true));
    let load: Vec<_> = (0..12)
        .map(|w| {
            let (host, running) = (host.clone(), running.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while running.load(Ordering::SeqCst) {
                    i += 1;
                    output(&host.transform("alice", &format!("{w}-{i}"), "upper").await);
                }
            })
        })
        .collect();
    for _ in 0..15 {
        let report = warden::audit::verify(host.kernel.audit().store())
            .await
            .unwrap();
        assert_eq!(report.failure, None, "{report:?}");
    }
    let cli_host = host.clone();
    let verify = tokio::task::spawn_blocking(move || cli_host.cli(&["audit", "verify"]))
        .await
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    running.store(false, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    assert_verifies(&host).await;
}

// ----------------------------------------------------- 5. a stalled store

/// Holds `LOCK TABLE audit_records` in the test's own database until dropped.
async fn lock_audit_table(host: &Host) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let db = host.postgres().await;
    let mut tx = db.begin().await.unwrap();
    sqlx::query("LOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_is_bounded_by_the_commit_timeout_and_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .audit_settings(&format!(
            "{}\ncommit_timeout_ms = 300",
            spool_setting(dir.path())
        ))
        .start()
        .await;
    output(&host.transform("alice", "before", "upper").await);
    let lock = lock_audit_table(&host).await;
    let started = Instant::now();
    let mut answered = Vec::new();
    for i in 0..20 {
        let response = host.transform("alice", &format!("{i}"), "upper").await;
        output(&response);
        answered.push(response.call_id);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "20 calls took {elapsed:?} under a table lock"
    );
    assert!(spooled_bytes(dir.path()) > 0);
    lock.rollback().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while spooled_bytes(dir.path()) > 0 && Instant::now() < deadline {
        let probe = host.transform("alice", "probe", "upper").await;
        output(&probe);
        answered.push(probe.call_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(spooled_bytes(dir.path()), 0);
    crate::harness::assert_recorded(&host, &answered).await;
    assert_verifies(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_without_a_spool_denies_within_the_commit_timeout() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .audit_settings("commit_timeout_ms = 300")
        .start()
        .await;
    output(&host.transform("alice", "before", "upper").await);
    let lock = lock_audit_table(&host).await;
    let started = Instant::now();
    for i in 0..5 {
        let response = host.transform("alice", &format!("{i}"), "upper").await;
        crate::harness::error(&response, ErrorCode::AuditUnavailable);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "5 denials took {elapsed:?}"
    );
    lock.rollback().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = host.transform("alice", "after", "upper").await;
        if response.result.is_ok() || Instant::now() > deadline {
            output(&response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_verifies(&host).await;
}

// ------------------------------------------------------------- 6. outages

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_starts_with_postgres_unreachable_when_it_has_a_spool() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::new().await;
    let through_relay = || async {
        let mut db = TestDb::create().await;
        db.url = relay.url(&db.url);
        db
    };
    // Down at start: without a spool the host refuses to start, naming the store.
    let refused = Harness::new(Store::Postgres)
        .database(through_relay().await)
        .plugin(fixtures::TEXT, "{}")
        .try_start()
        .await;
    let Err((e, _)) = refused else {
        panic!("a host without a spool started with its store down")
    };
    assert!(e.to_string().starts_with("audit store"), "{e}");
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .database(through_relay().await)
            .plugin(fixtures::TEXT, "{}")
            .audit_settings(&spool_setting(dir.path()))
            .start()
            .await,
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let host = host.clone();
            tokio::spawn(async move {
                let mut responses = Vec::new();
                for i in 0..25 {
                    responses.push(
                        call_in(
                            &host.kernel,
                            "alice",
                            "text.transform",
                            transform(&format!("{w}-{i}")),
                            None,
                        )
                        .await,
                    );
                }
                responses
            })
        })
        .collect();
    let mut answered = Vec::new();
    for response in futures_flatten(tasks).await {
        output(&response);
        answered.push(response.call_id);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "200 spooled calls took {elapsed:?}"
    );
    assert!(spooled_bytes(dir.path()) > 0);
    relay.up().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while spooled_bytes(dir.path()) > 0 && Instant::now() < deadline {
        let probe = host.transform("alice", "probe", "upper").await;
        output(&probe);
        answered.push(probe.call_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        spooled_bytes(dir.path()),
        0,
        "migrated and drained once reachable"
    );
    crate::harness::assert_recorded(&host, &answered).await;
    assert_verifies(&host).await;
}

/// Every task's outputs, task by task.
async fn futures_flatten<T>(tasks: Vec<tokio::task::JoinHandle<Vec<T>>>) -> Vec<T> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_without_a_spool_is_denied_fast() {
    let mut relay = Relay::new().await;
    relay.up().await;
    let mut db = TestDb::create().await;
    db.url = relay.url(&db.url);
    let host = Harness::new(Store::Postgres)
        .database(db)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    output(&host.transform("alice", "before", "upper").await);
    relay.down();
    let mut denials = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        let response = host.transform("alice", "x", "upper").await;
        let e = crate::harness::error(&response, ErrorCode::AuditUnavailable);
        assert!(
            !e.message.contains("5432") && !e.message.contains("refused"),
            "no raw store error: {e}"
        );
        denials.push(t.elapsed());
    }
    denials.sort();
    let median = denials[denials.len() / 2];
    assert!(
        denials.len() >= 20,
        "only {} denials in 4 s: {denials:?}",
        denials.len()
    );
    assert!(
        median < Duration::from_millis(100),
        "median denial {median:?}"
    );
    relay.up().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = host.transform("alice", "after", "upper").await;
        if response.result.is_ok() || Instant::now() > deadline {
            output(&response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_verifies(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_with_a_spool_keeps_answering_at_speed() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::new().await;
    relay.up().await;
    let mut db = TestDb::create().await;
    db.url = relay.url(&db.url);
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .database(db)
            .plugin(fixtures::TEXT, "{}")
            .audit_settings(&spool_setting(dir.path()))
            .start()
            .await,
    );
    output(&host.transform("alice", "before", "upper").await);
    relay.down();
    let started = Instant::now();
    let tasks: Vec<_> = (0..12)
        .map(|w| {
            let host = host.clone();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                while started.elapsed() < Duration::from_secs(3) {
                    let response = host.transform("alice", &format!("{w}"), "upper").await;
                    output(&response);
                    answered.push(response.call_id);
                }
                answered
            })
        })
        .collect();
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(task.await.unwrap());
    }
    // Before: a drain retried before every batch, ~13 calls/s (about 40 in
    // this window). Three times that tells the fix from the bug even on a
    // loaded machine (~250 under a parallel build, ~1,000 idle).
    assert!(
        answered.len() > 120,
        "{} calls answered in 3 s of outage",
        answered.len()
    );
    relay.up().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while spooled_bytes(dir.path()) > 0 && Instant::now() < deadline {
        let probe = host.transform("alice", "probe", "upper").await;
        output(&probe);
        answered.push(probe.call_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(spooled_bytes(dir.path()), 0);
    crate::harness::assert_recorded(&host, &answered).await;
    assert_verifies(&host).await;
}

// ---------------------------------------------------------- 7. checkpoints

/// A host with a checkpoint key, three chains (its own and two `warden
/// call`s), and an exported checkpoint over them; returns the checkpoint file.
async fn checkpointed_host() -> (Host, std::path::PathBuf) {
    let keys = tempfile::tempdir().unwrap().keep();
    let key = keys.join("audit.key");
    let keygen = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["policy", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .audit_settings(&format!(
            "checkpoint_key = {}",
            crate::harness::toml_path(&key)
        ))
        .start()
        .await;
    for i in 0..6 {
        output(&host.transform("alice", &format!("{i}"), "upper").await);
    }
    for i in 0..2 {
        let call = host.cli(&[
            "call",
            "text.transform",
            &transform(&format!("cli{i}")).to_string(),
            "--as",
            "alice",
        ]);
        assert!(
            call.status.success(),
            "{}",
            String::from_utf8_lossy(&call.stderr)
        );
    }
    let exported = host.cli(&["audit", "checkpoint", "--new"]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let file = keys.join("checkpoint.json");
    std::fs::write(&file, &exported.stdout).unwrap();
    // Calls after the checkpoint.
    output(&host.transform("alice", "later", "upper").await);
    let against = host.cli(&["audit", "verify", "--against", file.to_str().unwrap()]);
    assert_eq!(
        against.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&against.stdout)
    );
    (host, file)
}

/// `verify` (which cannot see it) and `verify --against` (which must).
fn verify_both(host: &Host, checkpoint: &std::path::Path) -> (std::process::Output, String) {
    let plain = host.cli(&["audit", "verify"]);
    let against = host.cli(&["audit", "verify", "--against", checkpoint.to_str().unwrap()]);
    assert_eq!(
        against.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&against.stdout)
    );
    (plain, String::from_utf8_lossy(&against.stdout).into_owned())
}

#[tokio::test]
async fn a_checkpoint_exposes_a_chain_deleted_whole() {
    let (host, checkpoint) = checkpointed_host().await;
    let db = host.postgres().await;
    let own = host.records().await[0].chain_id.clone();
    let (victim,): (String,) =
        sqlx::query_as("SELECT chain_id FROM audit_chains WHERE chain_id <> $1 LIMIT 1")
            .bind(&own)
            .fetch_one(&db)
            .await
            .unwrap();
    for sql in [
        "DELETE FROM audit_records WHERE chain_id = $1",
        "DELETE FROM audit_chains WHERE chain_id = $1",
    ] {
        sqlx::query(sql).bind(&victim).execute(&db).await.unwrap();
    }
    let (plain, against) = verify_both(&host, &checkpoint);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "a plain verify cannot see a chain deleted whole"
    );
    assert!(
        against.contains(&victim) && against.contains("deleted whole"),
        "{against}"
    );
}

#[tokio::test]
async fn a_checkpoint_exposes_newest_records_deleted_with_the_head_rolled_back() {
    let (host, checkpoint) = checkpointed_host().await;
    let db = host.postgres().await;
    let own = host.records().await[0].chain_id.clone();
    // Delete the three newest records the checkpoint covers (and the one after), roll the head back.
    sqlx::query("DELETE FROM audit_records WHERE chain_id = $1 AND seq >= 3")
        .bind(&own)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_chains SET head_seq = 2, head_hash = (SELECT hash FROM audit_records WHERE chain_id = $1 AND seq = 2) WHERE chain_id = $1",
    )
    .bind(&own)
    .execute(&db)
    .await
    .unwrap();
    let (plain, against) = verify_both(&host, &checkpoint);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "a plain verify cannot see a rolled-back head"
    );
    assert!(against.contains("rolled back"), "{against}");
}

#[tokio::test]
async fn a_checkpoint_exposes_an_edited_chain_host_and_a_forged_checkpoint() {
    let (host, checkpoint) = checkpointed_host().await;
    let db = host.postgres().await;
    sqlx::query("UPDATE audit_chains SET host = 'somewhere-else/1'")
        .execute(&db)
        .await
        .unwrap();
    let (plain, against) = verify_both(&host, &checkpoint);
    assert_eq!(plain.status.code(), Some(0));
    assert!(
        against.contains("somewhere-else/1") && against.contains("edited"),
        "{against}"
    );

    // A checkpoint re-signed by another key proves nothing.
    let other = tempfile::tempdir().unwrap();
    let keygen = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["policy", "keygen", "--out"])
        .arg(other.path().join("k"))
        .output()
        .unwrap();
    let foreign_key = String::from_utf8_lossy(&keygen.stdout).trim().to_string();
    let with_foreign = host.cli(&[
        "audit",
        "verify",
        "--against",
        checkpoint.to_str().unwrap(),
        "--public-key",
        &foreign_key,
    ]);
    assert_eq!(with_foreign.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&with_foreign.stdout).contains("not signed by the trusted key")
    );
}

#[tokio::test]
async fn checkpoints_are_signed_periodically_and_exported_by_the_cli() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("audit.key");
    let keygen = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["policy", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .audit_settings(&format!(
            "checkpoint_key = {}\ncheckpoint_interval_ms = 200",
            crate::harness::toml_path(&key)
        ))
        .start()
        .await;
    let none = host.cli(&["audit", "checkpoint"]);
    assert_eq!(
        none.status.code(),
        Some(2),
        "no checkpoint before the first record"
    );
    for i in 0..3 {
        output(&host.transform("alice", &format!("{i}"), "upper").await);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let latest = host.cli(&["audit", "checkpoint"]);
    assert!(
        latest.status.success(),
        "{}",
        String::from_utf8_lossy(&latest.stderr)
    );
    let checkpoint: Value = serde_json::from_slice(&latest.stdout).unwrap();
    let body: Value = serde_json::from_str(checkpoint["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["chains"][0]["head_seq"], 2, "{body}");
    let file = keys.path().join("cp.json");
    std::fs::write(&file, &latest.stdout).unwrap();
    let against = host.cli(&["audit", "verify", "--against", file.to_str().unwrap()]);
    assert_eq!(
        against.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&against.stdout)
    );
}

// ------------------------------------------------------- 8. small things

#[tokio::test]
async fn store_errors_are_logged_not_returned() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    output(&host.transform("alice", "before", "upper").await);
    let db_name = host
        .db
        .as_ref()
        .unwrap()
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    host.db.as_ref().unwrap().drop_database().await;
    let denied = host.transform("alice", "x", "upper").await;
    let e = crate::harness::error(&denied, ErrorCode::AuditUnavailable);
    assert!(
        !e.message.contains(&db_name) && !e.message.contains("database"),
        "{e}"
    );
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app
        .oneshot(
            axum::http::Request::get("/v1/audit")
                .header("authorization", format!("Bearer {}", token("audra")))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
        .into_owned();
    assert!(
        body.contains("audit-unavailable")
            && !body.contains(&db_name)
            && !body.contains("database"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    use tower::ServiceExt;
    let body = json!({"args": {"text": "x".repeat(3 << 20), "op": "upper"}}).to_string();
    let response = app
        .oneshot(
            axum::http::Request::post("/v1/tools/text.transform/invoke")
                .header("authorization", format!("Bearer {}", token("alice")))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn a_missing_manifest_is_named_once_with_its_plugin() {
    let host = Harness::new(Store::Sqlite).start().await;
    let config = std::fs::read_to_string(&host.config_path).unwrap();
    std::fs::write(
        &host.config_path,
        format!("{config}\n[plugins.ghost]\nmanifest = \"nowhere/plugin.toml\"\n"),
    )
    .unwrap();
    let out = host.cli(&["tools"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("plugin `ghost`"), "{stderr}");
    assert_eq!(stderr.matches("nowhere/plugin.toml").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_a_hundred_thousand_records_prints_no_driver_warning() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let audit = host.kernel.audit();
    let mut commits = Vec::with_capacity(100_000);
    for i in 0..100_000 {
        commits.push(
            audit
                .enqueue(sample_record(format!("bulk-{i}")))
                .await
                .unwrap(),
        );
    }
    for commit in commits {
        commit.committed().await.unwrap();
    }
    let verify = host.cli(&["audit", "verify"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr),
    );
    assert_eq!(verify.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("100000 records"), "{stdout}");
    assert!(stderr.trim().is_empty(), "verify printed: {stderr}");
}
