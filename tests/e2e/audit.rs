//! The audit trail under load and faults: every response has its record,
//! side effects leave intent records, tampering is detected, several hosts
//! share one database.

use crate::fixtures;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use warden::audit::{AuditFilter, AuditStore};

use crate::harness::{Harness, Server, Store, http, output, token};

#[tokio::test]
async fn query_export_and_the_http_endpoint_filter_the_trail() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let session = host.open_session("alice").await;
    for (principal, op) in [("alice", "upper"), ("bob", "lower"), ("alice", "reverse")] {
        let session = (principal == "alice").then_some(session.as_str());
        output(
            &host
                .call_in(
                    principal,
                    session,
                    "text.transform",
                    json!({"text": "x", "op": op}),
                )
                .await,
        );
    }
    let denied = host.transform("nobody", "x", "upper").await;
    assert!(denied.result.is_err());

    let alice = host.cli(&["audit", "query", "--principal", "alice"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&alice.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|r| r["principal"] == "alice"));
    let denials = host.cli(&["audit", "query", "--decision", "deny"]);
    assert_eq!(String::from_utf8_lossy(&denials.stdout).lines().count(), 1);
    let future = host.cli(&["audit", "export", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&future.stdout).lines().count(), 0);
    let in_session = host.cli(&["audit", "export", "--session", &session]);
    assert_eq!(
        String::from_utf8_lossy(&in_session.stdout).lines().count(),
        2
    );

    let app = warden::server::router(Arc::new(host.kernel), &Default::default());
    let get = |who: &str, query: &str| {
        axum::http::Request::get(format!("/v1/audit{query}"))
            .header("authorization", format!("Bearer {}", token(who)))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app.clone().oneshot(get("alice", "")).await.unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .clone()
        .oneshot(get("audra", "?principal=bob&limit=5"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["principal"], "bob");
    let response = app
        .oneshot(get("audra", "?limit=notanumber"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn side_effecting_calls_commit_an_intent_record_first() {
    let (dir, ro) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = Harness::new(Store::Sqlite)
        .plugin_entry(
            "hostile",
            &format!(
                "manifest = {}\ngrants = {}\n[plugins.hostile.tools.read_env]\nside_effects = false",
                crate::harness::toml_path(&crate::harness::manifest(fixtures::HOSTILE)),
                crate::harness::hostile_grants(dir.path(), ro.path(), "")
            ),
        )
        .policy(crate::harness::ALLOW_ALL)
        .start()
        .await;
    let response = host
        .call(
            "root",
            "hostile.write_file",
            json!({"path": "/data/rw/out.txt", "content": "hi"}),
        )
        .await;
    output(&response);
    let records = host.records().await;
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.record.call_id == response.call_id)
        .collect();
    assert_eq!(mine.len(), 2);
    assert!(mine[0].record.intent && mine[0].record.outcome == "pending");
    assert!(!mine[1].record.intent && mine[1].record.outcome == "ok");
    assert!(mine[0].seq < mine[1].seq);
    let incomplete = AuditFilter {
        incomplete: true,
        ..AuditFilter::default()
    };
    assert!(
        host.kernel
            .audit()
            .store()
            .query(&incomplete)
            .await
            .unwrap()
            .is_empty()
    );
    // Tools without side effects (here by the operator's pin) write one record.
    let read = host.call("root", "hostile.read_env", json!({})).await;
    output(&read);
    let count = host
        .records()
        .await
        .iter()
        .filter(|r| r.record.call_id == read.call_id)
        .count();
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_calls_have_exactly_ten_thousand_records() {
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .plugin(fixtures::TEXT, "{}")
            .start()
            .await,
    );
    let tasks: Vec<_> = (0..10_000)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move { host.transform("alice", &format!("n{i}"), "upper").await })
        })
        .collect();
    // Past the plugin's concurrency limit some calls are answered `plugin-busy`:
    // an answer all the same, and audited like any other.
    let mut answered = Vec::with_capacity(10_000);
    let mut succeeded = 0;
    for task in tasks {
        let response = task.await.unwrap();
        succeeded += usize::from(response.result.is_ok());
        answered.push(response.call_id);
    }
    assert!(succeeded > 0);
    let records = host.records().await;
    assert_eq!(records.len(), 10_000);
    let mut recorded: Vec<_> = records.into_iter().map(|r| r.record.call_id).collect();
    recorded.sort();
    answered.sort();
    assert_eq!(recorded, answered, "every response has exactly one record");
    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert_eq!((report.failure, report.records), (None, 10_000));
}

#[tokio::test]
async fn reordered_rows_are_detected() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    for i in 0..4 {
        output(&host.transform("alice", &format!("{i}"), "upper").await);
    }
    let db = host.postgres().await;
    // Swap the positions of records 1 and 2 (through -1: (chain, seq) is unique).
    for sql in [
        "UPDATE audit_records SET seq = -1 WHERE seq = 1",
        "UPDATE audit_records SET seq = 1 WHERE seq = 2",
        "UPDATE audit_records SET seq = 2 WHERE seq = -1",
    ] {
        sqlx::query(sql).execute(&db).await.unwrap();
    }
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(report.contains("seq 1"), "{report}");
}

async fn invoke(server: &Server, who: &str, tool: &str, args: Value) -> Option<(u16, Value)> {
    let body = json!({ "args": args }).to_string();
    http(
        &server.addr,
        "POST",
        &format!("/v1/tools/{tool}/invoke"),
        Some(&token(who)),
        &body,
    )
    .await
}

#[tokio::test]
pub(crate) async fn a_host_killed_mid_call_leaves_every_answered_call_recorded_and_the_interrupted_one_incomplete()
 {
    let (dir, ro) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .plugin(
            fixtures::HOSTILE,
            &crate::harness::hostile_grants(dir.path(), ro.path(), ""),
        )
        .policy(crate::harness::ALLOW_ALL)
        .start()
        .await;
    let mut server = Server::start(&host).await;
    let mut answered = Vec::new();
    for i in 0..20 {
        let (status, body) = invoke(
            &server,
            "alice",
            "text.transform",
            json!({"text": format!("{i}"), "op": "upper"}),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        answered.push(body["call_id"].as_str().unwrap().to_string());
    }
    // A side-effecting call that takes 5 s; the host dies after 1 s.
    let addr = server.addr.clone();
    let slow = tokio::spawn(async move {
        let body = json!({"args": {"path": "/data/rw/late.txt", "seconds": 5}}).to_string();
        http(
            &addr,
            "POST",
            "/v1/tools/hostile.write_slowly/invoke",
            Some(&token("root")),
            &body,
        )
        .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    assert!(
        slow.await.unwrap().is_none(),
        "the interrupted call got no response"
    );
    assert!(!dir.path().join("late.txt").exists());

    let store = host.kernel.audit().store();
    for call_id in &answered {
        assert!(
            store.by_call_id(call_id).await.unwrap().is_some(),
            "no record for answered call {call_id}"
        );
    }
    let incomplete = host.cli(&["audit", "query", "--incomplete"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&incomplete.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["tool"], "hostile.write_slowly");
    assert_eq!(lines[0]["outcome"], "pending");

    // The restarted host serves again, on a new chain; every chain verifies.
    let server = Server::start(&host).await;
    let (status, _) = invoke(
        &server,
        "alice",
        "text.transform",
        json!({"text": "again", "op": "upper"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let verify = host.cli(&["audit", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// `audit.durability` reaches the store's connections: `commit` relaxes
/// only the log flush (PostgreSQL `synchronous_commit`, SQLite
/// `synchronous`); `flush`, the default, keeps it.
#[tokio::test]
async fn durability_sets_how_the_store_flushes_its_commits() {
    for (store, setting, expected) in [
        (Store::Postgres, "", "on"),
        (Store::Postgres, "durability = \"flush\"", "on"),
        (Store::Postgres, "durability = \"commit\"", "off"),
        (Store::Sqlite, "", "2"),
        (Store::Sqlite, "durability = \"commit\"", "1"),
    ] {
        let host = Harness::new(store)
            .plugin(fixtures::TEXT, "{}")
            .audit_settings(setting)
            .start()
            .await;
        let got = match host.kernel.audit().store() {
            AuditStore::Postgres(pool) => {
                sqlx::query_scalar::<_, String>("SHOW synchronous_commit")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
            AuditStore::Sqlite(pool) => sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .unwrap()
                .to_string(),
        };
        assert_eq!(got, expected, "{setting:?}");
    }
}

/// With either durability, a host killed (SIGKILL) the moment it answered
/// leaves every answered call's record in the store, and the chain
/// verifies. (PostgreSQL with `flush`: the test above with a call in
/// flight.)
#[tokio::test]
async fn answered_calls_survive_a_killed_host_with_either_durability() {
    for (store, setting) in [
        (Store::Sqlite, ""),
        (Store::Sqlite, "durability = \"commit\""),
        (Store::Postgres, "durability = \"commit\""),
    ] {
        let host = Harness::new(store)
            .plugin(fixtures::TEXT, "{}")
            .audit_settings(setting)
            .start()
            .await;
        let mut server = Server::start(&host).await;
        let mut answered = Vec::new();
        for i in 0..30 {
            let args = json!({"text": format!("{i}"), "op": "upper"});
            let (status, body) = invoke(&server, "alice", "text.transform", args)
                .await
                .unwrap();
            assert_eq!(status, 200, "{body}");
            answered.push(body["call_id"].as_str().unwrap().to_string());
        }
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        let store = host.kernel.audit().store();
        for call_id in &answered {
            assert!(
                store.by_call_id(call_id).await.unwrap().is_some(),
                "{setting:?}: no record for answered call {call_id}"
            );
        }
        let verify = host.cli(&["audit", "verify"]);
        assert_eq!(
            verify.status.code(),
            Some(0),
            "{setting:?}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
}

#[tokio::test]
async fn two_hosts_sharing_one_database_keep_verifiable_chains() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let (a, b) = (Server::start(&host).await, Server::start(&host).await);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let addr = if i % 2 == 0 {
                a.addr.clone()
            } else {
                b.addr.clone()
            };
            tokio::spawn(async move {
                let body = json!({"args": {"text": format!("{i}"), "op": "upper"}}).to_string();
                http(
                    &addr,
                    "POST",
                    "/v1/tools/text.transform/invoke",
                    Some(&token("alice")),
                    &body,
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().0, 200);
    }
    drop((a, b));
    let verify = host.cli(&["audit", "verify"]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{report}");
    assert!(
        report.contains("ok: 40 records in 2 chains verified"),
        "{report}"
    );
}

#[tokio::test]
async fn verify_over_a_time_range_checks_only_that_range() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let first = host.transform("alice", "a", "upper").await;
    output(&first);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let boundary = chrono::Utc::now();
    for i in 0..3 {
        output(&host.transform("alice", &format!("{i}"), "upper").await);
    }
    let db = host.postgres().await;
    sqlx::query("UPDATE audit_records SET tool = 'edited' WHERE seq = 0")
        .execute(&db)
        .await
        .unwrap();
    let whole = host.cli(&["audit", "verify"]);
    assert_eq!(whole.status.code(), Some(1));
    let since = boundary.to_rfc3339();
    let range = host.cli(&["audit", "verify", "--since", &since]);
    let report = String::from_utf8_lossy(&range.stdout);
    assert_eq!(range.status.code(), Some(0), "{report}");
    assert!(report.contains("ok: 3 records"), "{report}");
    let until = host.cli(&["audit", "verify", "--until", &since]);
    assert_eq!(
        until.status.code(),
        Some(1),
        "the edited first record is in this range"
    );
}

/// PostgreSQL stops and starts in the middle of a load. Without a spool,
/// calls that cannot be recorded are denied; with one, every call is answered
/// from the spool, which drains when the server is back. Either way: no
/// response without a record, no duplicate, every chain verifies.
async fn postgres_restart_under_load(spool: bool) {
    let _exclusive = crate::harness::postgres_exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let spool_setting = if spool {
        format!(
            "spool = {}",
            crate::harness::toml_path(&dir.path().join("audit.spool"))
        )
    } else {
        String::new()
    };
    let host = Arc::new(
        Harness::new(Store::Postgres)
            .database(crate::harness::TestDb::create_unlocked().await)
            .plugin(fixtures::TEXT, "{}")
            .audit_settings(&spool_setting)
            .start()
            .await,
    );
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (host, running) = (host.clone(), running.clone());
            tokio::spawn(async move {
                let mut responses = Vec::new();
                let mut i = 0;
                while running.load(std::sync::atomic::Ordering::SeqCst) {
                    i += 1;
                    let args = json!({"text": format!("{w}-{i}"), "op": "upper"});
                    responses.push(host.call("alice", "text.transform", args).await);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                responses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _restart = crate::harness::StartPostgresOnDrop;
    crate::harness::pg_ctl("stop -m fast");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    crate::harness::pg_ctl("start");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut answered = Vec::new();
    let mut denied = 0;
    for worker in workers {
        for response in worker.await.unwrap() {
            match &response.result {
                Ok(_) => answered.push(response.call_id),
                Err(e) => {
                    assert_eq!(e.code, warden::ErrorCode::AuditUnavailable, "{e}");
                    denied += 1;
                }
            }
        }
    }
    // Let a spooling writer drain: one more call after the outage goes through the store.
    for _ in 0..50 {
        let probe = host.transform("alice", "probe", "upper").await;
        if probe.result.is_ok() {
            answered.push(probe.call_id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if spool {
        assert_eq!(denied, 0, "with a spool no call is denied");
        // The writer retries a failed store with a back-off (up to 5 s).
        let spooled = || {
            std::fs::metadata(dir.path().join("audit.spool"))
                .unwrap()
                .len()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while spooled() > 0 && std::time::Instant::now() < deadline {
            let probe = host.transform("alice", "probe", "upper").await;
            if probe.result.is_ok() {
                answered.push(probe.call_id);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(spooled(), 0, "the spool drained");
    }
    // Without a spool, calls caught by the outage are denied (how many depends
    // on whether they waited out the restart for a connection); either way the
    // invariants below hold.
    let records = host.records().await;
    let mut recorded: Vec<_> = records.iter().map(|r| r.record.call_id.clone()).collect();
    let total = recorded.len();
    recorded.sort();
    recorded.dedup();
    assert_eq!(recorded.len(), total, "no duplicate records");
    for call_id in &answered {
        assert!(
            recorded.binary_search(call_id).is_ok(),
            "answered call {call_id} has no record"
        );
    }
    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert_eq!(report.failure, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_without_spool_denies_but_loses_nothing() {
    postgres_restart_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_with_spool_answers_every_call_and_drains() {
    postgres_restart_under_load(true).await;
}
