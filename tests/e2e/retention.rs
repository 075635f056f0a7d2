//! Audit retention: the PostgreSQL trail is partitioned by month; old months
//! are exported to compressed JSON Lines that verify on their own, then
//! dropped, and the database's chains verify from where their archives end.
//! Refused when archiving would break a chain. Past months are made by
//! writing records with the real chain hash at past times (as a host did
//! then) into the partitions `partitions::ensure` creates for them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use warden::audit::partitions::{Month, Segment};
use warden::audit::{AuditRecord, AuditStore, GENESIS_HASH, chain_hash};

use crate::fixtures;
use crate::harness::{Harness, Host, Store, TestDb, output};

/// The month `n` months before the current one.
fn months_ago(n: u32) -> Month {
    let mut month = Month::of(Utc::now());
    for _ in 0..n {
        month = Month::of(month.start() - chrono::Duration::days(1));
    }
    month
}

/// A record of a call to `text.transform` by `principal` at `at`.
fn record(call_id: &str, principal: &str, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        call_id: call_id.to_string(),
        recorded_at: at,
        principal: principal.to_string(),
        tenant: "acme".into(),
        session: None,
        tool: "text.transform".into(),
        plugin: Some("text".into()),
        plugin_sha256: None,
        upstream: None,
        policy_hash: "p".repeat(64),
        decision: "allow".into(),
        reasons: vec![],
        decisions: vec![],
        args_digest: "a".repeat(64),
        outcome: "ok".into(),
        output_digest: None,
        error: None,
        duration_us: 42,
        intent: false,
        shadow: None,
        policy_input: None,
        refusals: vec![],
        verdicts: vec![],
        completion: None,
        sealed_text: None,
        spend: None,
    }
}

/// Runs the same statement on either pool.
macro_rules! on_store {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            AuditStore::Postgres($pool) => $body,
            AuditStore::Sqlite($pool) => $body,
        }
    };
}

/// Writes chain `chain` as a host at `times[seq]` would have: each record
/// linked to the one before and hashed as the writer hashes, the chain's
/// head moved to the last. Returns the hashes.
async fn write_chain(store: &AuditStore, chain: &str, times: &[DateTime<Utc>]) -> Vec<String> {
    on_store!(store, pool => {
        sqlx::query(
            "INSERT INTO audit_chains (chain_id, host, started_at, head_seq, head_hash) \
             VALUES ($1, 'fixture/1', $2, -1, $3)",
        )
        .bind(chain)
        .bind(times[0])
        .bind(GENESIS_HASH)
        .execute(pool)
        .await
        .unwrap();
    });
    let mut prev = GENESIS_HASH.to_string();
    let mut hashes = Vec::new();
    for (seq, at) in times.iter().enumerate() {
        let seq = i64::try_from(seq).unwrap();
        let r = record(&format!("{chain}-{seq}"), "alice", *at);
        let hash = chain_hash(chain, seq, &prev, &r);
        on_store!(store, pool => {
            sqlx::query(
                "INSERT INTO audit_records (chain_id, seq, prev_hash, hash, call_id, recorded_at, \
                 principal, tenant, tool, plugin, policy_hash, decision, reasons, args_digest, \
                 outcome, duration_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(chain)
            .bind(seq)
            .bind(&prev)
            .bind(&hash)
            .bind(&r.call_id)
            .bind(r.recorded_at)
            .bind(&r.principal)
            .bind(&r.tenant)
            .bind(&r.tool)
            .bind(&r.plugin)
            .bind(&r.policy_hash)
            .bind(&r.decision)
            .bind(sqlx::types::Json(&r.reasons))
            .bind(&r.args_digest)
            .bind(&r.outcome)
            .bind(r.duration_us)
            .execute(pool)
            .await
            .unwrap();
        });
        prev = hash.clone();
        hashes.push(hash);
    }
    on_store!(store, pool => {
        sqlx::query("UPDATE audit_chains SET head_seq = $1, head_hash = $2 WHERE chain_id = $3")
            .bind(i64::try_from(times.len()).unwrap() - 1)
            .bind(&prev)
            .bind(chain)
            .execute(pool)
            .await
            .unwrap();
    });
    hashes
}

/// `n` instants in `month`, a day apart from its 2nd.
fn days_of(month: Month, n: i64) -> Vec<DateTime<Utc>> {
    (0..n)
        .map(|d| month.start() + chrono::Duration::days(1 + d) + chrono::Duration::microseconds(7))
        .collect()
}

/// The partitions of the audit table, by name.
async fn partitions(host: &Host) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'audit_records'::regclass ORDER BY 1",
    )
    .fetch_all(&host.postgres().await)
    .await
    .unwrap();
    rows.into_iter().map(|(n,)| n).collect()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `warden audit verify --archive FILES…`.
fn verify_archives(host: &Host, files: &[&Path]) -> std::process::Output {
    let mut args = vec!["audit", "verify", "--archive"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    host.cli(&args)
}

/// The lines of a gzip archive.
fn archive_lines(file: &Path) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_string).collect()
}

/// Writes `lines` as a gzip archive at `file`.
fn write_archive(file: &Path, lines: &[String]) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(file).unwrap(),
        flate2::Compression::fast(),
    );
    for line in lines {
        writeln!(gz, "{line}").unwrap();
    }
    gz.finish().unwrap();
}

fn store(host: &Host) -> &AuditStore {
    host.kernel.audit().store()
}

#[tokio::test]
async fn old_months_are_archived_to_files_that_verify_on_their_own() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    output(&host.transform("alice", "now", "upper").await);
    let (m3, m2, m1) = (months_ago(3), months_ago(2), months_ago(1));
    let created = warden::audit::partitions::ensure(store(&host), m3.start())
        .await
        .unwrap();
    assert_eq!(created.len(), 3, "{created:?}");
    // Chain P ran for three months; chain Q began two months ago and still runs.
    let mut p_times = days_of(m3, 4);
    p_times.extend(days_of(m2, 3));
    p_times.extend(days_of(m1, 3));
    write_chain(store(&host), "chain-p", &p_times).await;
    let mut q_times = days_of(m2, 3);
    q_times.extend([AuditRecord::now() - chrono::Duration::seconds(5); 2]);
    write_chain(store(&host), "chain-q", &q_times).await;

    let dir = host.dir.path().join("archive");
    let cutoff = m1.start().format("%Y-%m-%d").to_string();
    let dry = host.cli(&["audit", "archive", "--before", &cutoff, "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(stdout(&dry).lines().count(), 2, "{}", stdout(&dry));
    assert!(!dir.exists(), "a dry run writes nothing");

    let run = host.cli(&[
        "audit",
        "archive",
        "--before",
        &cutoff,
        "--to",
        dir.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let archived: Vec<Value> = stdout(&run)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names = [Segment::month(m3).name, Segment::month(m2).name];
    assert_eq!(
        archived
            .iter()
            .map(|a| a["segment"].clone())
            .collect::<Vec<_>>(),
        names.iter().map(|n| json!(n)).collect::<Vec<_>>()
    );
    assert_eq!(archived[0]["records"], 4);
    assert_eq!(archived[1]["records"], 6);
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(format!("{n}.jsonl.gz")))
        .collect();
    let left = partitions(&host).await;
    assert!(names.iter().all(|n| !left.contains(n)), "{left:?}");
    assert!(left.contains(&Segment::month(m1).name), "{left:?}");

    // The database verifies from where each chain's archive ends.
    let verify = host.cli(&["audit", "verify"]);
    assert!(
        stdout(&verify).starts_with("ok: 6 records"),
        "{}",
        stdout(&verify)
    );
    // The archives verify on their own: together, and the later one alone.
    let both = verify_archives(&host, &[&files[0], &files[1]]);
    assert_eq!(
        stdout(&both).trim(),
        "ok: 10 records in 2 archives verified"
    );
    let later = verify_archives(&host, &[&files[1]]);
    assert!(later.status.success(), "{}", stdout(&later));
    let reversed = verify_archives(&host, &[&files[1], &files[0]]);
    assert!(
        stdout(&reversed).contains("missing or out of order"),
        "{}",
        stdout(&reversed)
    );
    // The database names each archive's file and digest.
    let digests: Vec<(String, String)> =
        sqlx::query_as("SELECT file, sha256 FROM audit_archives ORDER BY id")
            .fetch_all(&host.postgres().await)
            .await
            .unwrap();
    let reported: Vec<String> = archived
        .iter()
        .map(|a| a["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        digests.iter().map(|d| d.1.clone()).collect::<Vec<_>>(),
        reported
    );
    for (file, sha256) in files.iter().zip(&reported) {
        use sha2::Digest;
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(&hex::encode(sha2::Sha256::digest(&bytes)), sha256);
    }

    // Nothing is left to archive before the cutoff; the current month is
    // not archived while it is written.
    let again = host.cli(&[
        "audit",
        "archive",
        "--before",
        &cutoff,
        "--to",
        dir.to_str().unwrap(),
    ]);
    assert!(again.status.success() && stdout(&again).is_empty());
    let next = Month::of(Utc::now())
        .next()
        .start()
        .format("%Y-%m-%d")
        .to_string();
    let current = host.cli(&["audit", "archive", "--before", &next, "--dry-run"]);
    assert!(!current.status.success());
    assert!(
        stderr(&current).contains("still being written"),
        "{}",
        stderr(&current)
    );

    // The host goes on recording; everything still verifies.
    output(&host.transform("alice", "later", "upper").await);
    let verify = host.cli(&["audit", "verify"]);
    assert!(
        stdout(&verify).starts_with("ok: 7 records"),
        "{}",
        stdout(&verify)
    );
}

#[tokio::test]
async fn an_edited_cut_or_padded_archive_does_not_verify() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let m2 = months_ago(2);
    warden::audit::partitions::ensure(store(&host), m2.start())
        .await
        .unwrap();
    write_chain(store(&host), "chain-a", &days_of(m2, 5)).await;
    write_chain(store(&host), "chain-b", &days_of(m2, 2)).await;
    let dir = host.dir.path().join("archive");
    let cutoff = m2.next().start().format("%Y-%m-%d").to_string();
    let run = host.cli(&[
        "audit",
        "archive",
        "--before",
        &cutoff,
        "--to",
        dir.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let file = dir.join(format!("{}.jsonl.gz", Segment::month(m2).name));
    let lines = archive_lines(&file);
    assert_eq!(lines.len(), 8, "a header and seven records");
    assert!(verify_archives(&host, &[&file]).status.success());

    let tampered = host.dir.path().join("tampered.jsonl.gz");
    let edit = |i: usize, field: &str, value: Value| {
        let mut lines = lines.clone();
        let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
        v[field] = value;
        lines[i] = v.to_string();
        lines
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "principal edited",
            edit(3, "principal", json!("mallory")),
            "edited",
        ),
        (
            "outcome edited",
            edit(6, "outcome", json!("denied")),
            "edited",
        ),
        (
            "a record dropped",
            [&lines[..2], &lines[3..]].concat(),
            "expected seq 1",
        ),
        ("the last records cut off", lines[..4].to_vec(), "cut off"),
        (
            "a record padded on",
            [lines.clone(), vec![lines[7].clone()]].concat(),
            "after the last chain",
        ),
        (
            "a head hash replaced in the header",
            edit(0, "chains", {
                let mut h: Value = serde_json::from_str(&lines[0]).unwrap();
                h["chains"][0]["head_hash"] = json!("f".repeat(64));
                h["chains"].clone()
            }),
            "head hash",
        ),
        (
            "a record count changed in the header",
            edit(0, "records", json!(6)),
            "header says 6",
        ),
        (
            "a record moved to another month",
            edit(2, "recorded_at", json!("2001-01-01T00:00:00.000007Z")),
            "edited",
        ),
    ];
    for (what, lines, expected) in cases {
        write_archive(&tampered, &lines);
        let check = verify_archives(&host, &[&tampered]);
        assert!(!check.status.success(), "{what}: verified");
        assert!(
            stdout(&check).contains(expected),
            "{what}: {}",
            stdout(&check)
        );
    }
    // A file cut short in the middle of its compressed stream.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&tampered, &bytes[..bytes.len() / 2]).unwrap();
    let check = verify_archives(&host, &[&tampered]);
    assert!(!check.status.success());
    assert!(stdout(&check).contains("unreadable"), "{}", stdout(&check));
}

#[tokio::test]
async fn a_month_that_would_break_a_chain_is_not_archived() {
    let host = Harness::new(Store::Postgres)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    let (m3, m2) = (months_ago(3), months_ago(2));
    warden::audit::partitions::ensure(store(&host), m3.start())
        .await
        .unwrap();
    let cutoff = m2.start().format("%Y-%m-%d").to_string();
    let dir = host.dir.path().join("archive");
    let archive = || {
        host.cli(&[
            "audit",
            "archive",
            "--before",
            &cutoff,
            "--to",
            dir.to_str().unwrap(),
        ])
    };

    // A host whose clock went back: seq 1 was recorded in the month before seq 0.
    let clock_back = vec![days_of(m2, 1)[0], days_of(m3, 1)[0], days_of(m2, 2)[1]];
    write_chain(store(&host), "chain-clock", &clock_back).await;
    let refused = archive();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("chain chain-clock")
            && stderr(&refused).contains("clock went back"),
        "{}",
        stderr(&refused)
    );
    assert!(partitions(&host).await.contains(&Segment::month(m3).name));
    assert!(
        !dir.join(format!("{}.jsonl.gz", Segment::month(m3).name))
            .exists()
    );
    let pg = host.postgres().await;
    sqlx::query("DELETE FROM audit_records WHERE chain_id = 'chain-clock'")
        .execute(&pg)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_chains WHERE chain_id = 'chain-clock'")
        .execute(&pg)
        .await
        .unwrap();

    // The same, the other way round: seq 1 recorded a month after seq 2.
    let mut split = days_of(m3, 3);
    split[1] = days_of(m2, 1)[0];
    write_chain(store(&host), "chain-split", &split).await;
    let refused = archive();
    assert!(
        !refused.status.success() && stderr(&refused).contains("chain chain-split"),
        "{}",
        stderr(&refused)
    );
    sqlx::query("DELETE FROM audit_records WHERE chain_id = 'chain-split'")
        .execute(&pg)
        .await
        .unwrap();

    // A record edited in place, and one deleted from the middle.
    write_chain(store(&host), "chain-edit", &days_of(m3, 3)).await;
    sqlx::query(
        "UPDATE audit_records SET principal = 'mallory' WHERE chain_id = 'chain-edit' AND seq = 1",
    )
    .execute(&pg)
    .await
    .unwrap();
    let refused = archive();
    assert!(
        !refused.status.success() && stderr(&refused).contains("edited"),
        "{}",
        stderr(&refused)
    );
    sqlx::query(
        "UPDATE audit_records SET principal = 'alice' WHERE chain_id = 'chain-edit' AND seq = 1",
    )
    .execute(&pg)
    .await
    .unwrap();
    sqlx::query("DELETE FROM audit_records WHERE chain_id = 'chain-edit' AND seq = 1")
        .execute(&pg)
        .await
        .unwrap();
    let refused = archive();
    assert!(
        !refused.status.success() && stderr(&refused).contains("chain chain-edit"),
        "{}",
        stderr(&refused)
    );
    // Nothing was archived: no file, every month still there, no mark moved.
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none());
    assert!(partitions(&host).await.contains(&Segment::month(m3).name));
    let (archived,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_archives")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(archived, 0);
}

#[tokio::test]
async fn a_trail_recorded_before_partitioning_becomes_one_partition() {
    // A database as the previous release left it: migrations up to 0020,
    // three months of records.
    let db = TestDb::create().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let earlier = tempfile::tempdir().unwrap();
    for entry in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap()
    {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "0021" {
            std::fs::copy(&path, earlier.path().join(name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(earlier.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let (m3, m2) = (months_ago(3), months_ago(2));
    let old = AuditStore::Postgres(pool.clone());
    let mut times = days_of(m3, 2);
    times.extend(days_of(m2, 2));
    write_chain(&old, "chain-old", &times).await;

    // Upgrading attaches that table whole, up to the month after its newest record.
    old.migrate().await.unwrap();
    let report = warden::audit::verify(&old).await.unwrap();
    assert_eq!((report.records, report.failure), (4, None));
    let (parts,): (Vec<String>,) = sqlx::query_as(
        "SELECT array_agg(c.relname::TEXT ORDER BY c.relname) FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_records'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let before = format!("audit_records_before_{}", m2.next().start().format("%Y_%m"));
    assert_eq!(
        parts,
        vec![before.clone(), "audit_records_default".to_string()]
    );

    // A host writes into months of its own from now on.
    warden::audit::partitions::ensure(&old, Utc::now())
        .await
        .unwrap();
    write_chain(&old, "chain-new", &[AuditRecord::now()]).await;
    // The old trail is archived as one, once its last month is over.
    let dir = tempfile::tempdir().unwrap();
    let archived = warden::audit::archive::archive(&old, m2.next().start(), dir.path(), false)
        .await
        .unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(
        (archived[0].segment.as_str(), archived[0].records),
        (before.as_str(), 4)
    );
    let file = archived[0].file.clone().unwrap();
    let report = warden::audit::archive::verify_archives(&[file]).unwrap();
    assert_eq!((report.records, report.failure), (4, None));
    let report = warden::audit::verify(&old).await.unwrap();
    assert_eq!((report.records, report.failure), (1, None));
}

#[tokio::test]
async fn the_embedded_store_archives_its_months_the_same_way() {
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .start()
        .await;
    output(&host.transform("alice", "now", "upper").await);
    let (m2, m1) = (months_ago(2), months_ago(1));
    let mut times = days_of(m2, 3);
    times.extend(days_of(m1, 2));
    times.push(AuditRecord::now());
    write_chain(store(&host), "chain-s", &times).await;

    let dir = host.dir.path().join("archive");
    let cutoff = Month::of(Utc::now()).start().format("%Y-%m-%d").to_string();
    let run = host.cli(&[
        "audit",
        "archive",
        "--before",
        &cutoff,
        "--to",
        dir.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let archived: Vec<Value> = stdout(&run)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert_eq!(
        (
            archived[0]["records"].clone(),
            archived[1]["records"].clone()
        ),
        (json!(3), json!(2))
    );
    let files: Vec<PathBuf> = [m2, m1]
        .iter()
        .map(|m| dir.join(format!("{}.jsonl.gz", Segment::month(*m).name)))
        .collect();
    let both = verify_archives(&host, &[&files[0], &files[1]]);
    assert_eq!(stdout(&both).trim(), "ok: 5 records in 2 archives verified");
    let verify = host.cli(&["audit", "verify"]);
    assert!(
        stdout(&verify).starts_with("ok: 2 records"),
        "{}",
        stdout(&verify)
    );
    output(&host.transform("alice", "later", "upper").await);
    let verify = host.cli(&["audit", "verify"]);
    assert!(
        stdout(&verify).starts_with("ok: 3 records"),
        "{}",
        stdout(&verify)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn months_are_made_and_archived_while_calls_are_recorded() {
    let host = std::sync::Arc::new(
        Harness::new(Store::Postgres)
            .plugin(fixtures::TEXT, "{}")
            .start()
            .await,
    );
    let (m3, m2) = (months_ago(3), months_ago(2));
    warden::audit::partitions::ensure(store(&host), m3.start())
        .await
        .unwrap();
    write_chain(
        store(&host),
        "chain-old",
        &[days_of(m3, 3), days_of(m2, 2)].concat(),
    )
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let callers: Vec<_> = (0..8)
        .map(|i| {
            let (host, stop) = (host.clone(), stop.clone());
            tokio::spawn(async move {
                let mut calls = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = host
                        .transform("alice", &format!("{i}-{calls}"), "upper")
                        .await;
                    if let Err(e) = &response.result {
                        assert_ne!(e.code, warden::error::ErrorCode::AuditUnavailable, "{e:?}");
                    }
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    // A year of months is made ahead while records are committed…
    let mut month = Month::of(Utc::now());
    let mut made = 0;
    for _ in 0..12 {
        month = month.next();
        made += warden::audit::partitions::ensure(store(&host), month.start())
            .await
            .unwrap()
            .len();
    }
    assert!(made >= 10, "{made} months made");
    // …and the old months are archived.
    let dir = tempfile::tempdir().unwrap();
    let archived =
        warden::audit::archive::archive(store(&host), m2.next().start(), dir.path(), false)
            .await
            .unwrap();
    assert_eq!(archived.len(), 2);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut calls = 0;
    for caller in callers {
        calls += caller.await.unwrap();
    }
    assert!(calls > 0);
    let report = warden::audit::verify(store(&host)).await.unwrap();
    assert_eq!((report.records, report.failure), (calls, None));
}
