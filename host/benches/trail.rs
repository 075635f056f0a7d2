//! `warden audit query`'s filters on a large trail in PostgreSQL: by default
//! 10 million records over four monthly partitions, from 8 chains (hosts),
//! 1,000 principals, 20 tenants, 50 tools, a session on every fourth call, 5%
//! denials, 2% errors, an intent before every hundredth call (a thousandth
//! of those never finished). Each filter runs through `AuditStore::query`
//! (what the CLI and `GET /v1/audit` run) with the CLI's default limit of
//! 1,000 records; the table prints median, 95th percentile and slowest of
//! 20 runs (at least 3, at most 10 s of them) after one warm-up.
//!
//! The records are generated in SQL (they are not valid chains: this
//! measures reads, not verification) into the database
//! `warden_bench_trail`, which is kept between runs and reused while it
//! holds the number asked for. Run with
//! `cargo bench -p warden --bench trail` (set `WARDEN_TRAIL_RECORDS` for
//! another size, `WARDEN_TEST_POSTGRES_URL` for another server). Loading
//! 10 million records takes a while on a small machine.

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark prints its results, stops at the first failure, and spreads \
              its records over time in floating point"
)]

use std::time::{Duration, Instant};

use chrono::Utc;
use warden::audit::partitions::Month;
use warden::audit::{AuditFilter, AuditStore, Durability};

/// Chains (hosts) the records are spread over.
const CHAINS: i64 = 8;
/// Records generated per statement.
const CHUNK: i64 = 500_000;
/// Runs per filter after the warm-up.
const RUNS: usize = 20;

fn main() {
    // `cargo test` runs benches with `--bench` absent: nothing to smoke-test
    // here without the large load, so it only runs when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let records: i64 = std::env::var("WARDEN_TRAIL_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(records));
}

async fn bench(records: i64) {
    let admin_url = std::env::var("WARDEN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("PostgreSQL must be reachable (WARDEN_TEST_POSTGRES_URL)");
    let exists: Option<(i32,)> =
        sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = 'warden_bench_trail'")
            .fetch_optional(&admin)
            .await
            .expect("list databases");
    if exists.is_none() {
        sqlx::query("CREATE DATABASE warden_bench_trail")
            .execute(&admin)
            .await
            .expect("create warden_bench_trail");
    }
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let url = format!("{base}/warden_bench_trail");
    let store = AuditStore::connect(&url, Duration::from_secs(30), Durability::Flush)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let AuditStore::Postgres(pool) = &store else {
        unreachable!("a PostgreSQL URL");
    };
    let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_records")
        .fetch_one(pool)
        .await
        .expect("count");
    // Three months back and the current one.
    let mut first = Month::of(Utc::now());
    for _ in 0..3 {
        first = Month::of(first.start() - chrono::Duration::days(1));
    }
    if held != records {
        load(&store, records, first).await;
    }
    let (bytes,): (String,) =
        sqlx::query_as("SELECT pg_size_pretty(pg_total_relation_size('audit_records') + COALESCE((SELECT SUM(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'audit_records'::regclass), 0))")
            .fetch_one(pool)
            .await
            .expect("size");
    println!("{records} records, {bytes} with indexes");
    let day = first.next().start() + chrono::Duration::days(10);
    let some = |f: fn(&mut AuditFilter)| {
        let mut filter = AuditFilter {
            limit: Some(1000),
            ..AuditFilter::default()
        };
        f(&mut filter);
        filter
    };
    let mut filters: Vec<(&str, AuditFilter)> = vec![
        (
            "principal (1 in 1,000)",
            some(|f| f.principal = Some("user-42".into())),
        ),
        (
            "principal with 10 records",
            some(|f| f.principal = Some("user-rare".into())),
        ),
        (
            "tenant (1 in 20)",
            some(|f| f.tenant = Some("tenant-3".into())),
        ),
        (
            "tool (1 in 50)",
            some(|f| f.tool = Some("tool-7.run".into())),
        ),
        (
            "decision deny (5%)",
            some(|f| f.decision = Some("deny".into())),
        ),
        (
            "outcome error (2%)",
            some(|f| f.outcome = Some("plugin_error".into())),
        ),
        (
            "session",
            some(|f| f.session = Some("session-12345".into())),
        ),
        ("incomplete intents", some(|f| f.incomplete = true)),
    ];
    let mut range = some(|_| ());
    range.since = Some(day);
    range.until = Some(day + chrono::Duration::days(1));
    filters.push(("one day", range.clone()));
    range.principal = Some("user-42".into());
    filters.push(("principal in one day", range));
    println!("| filter | records returned | p50 | p95 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (name, filter) in &filters {
        let returned = store.query(filter).await.expect("query").len();
        let times = time(|| async {
            store.query(filter).await.expect("query");
        })
        .await;
        print_row(name, returned, &times);
    }
    let times = time(|| async {
        store.by_call_id("call-4999999").await.expect("by call id");
    })
    .await;
    print_row("one call by id", 1, &times);
    let times = time(|| async {
        store.tail(20).await.expect("tail");
    })
    .await;
    print_row("tail -n 20", 20, &times);
}

/// Runs `run` once to warm up, then [`RUNS`] times (but no more than 10 s
/// once it ran 3 times); the times sorted.
async fn time<F: std::future::Future<Output = ()>>(run: impl Fn() -> F) -> Vec<Duration> {
    run().await;
    let mut times = Vec::with_capacity(RUNS);
    let started = Instant::now();
    while times.len() < RUNS && (times.len() < 3 || started.elapsed() < Duration::from_secs(10)) {
        let start = Instant::now();
        run().await;
        times.push(start.elapsed());
    }
    times.sort();
    times
}

fn print_row(name: &str, returned: usize, times: &[Duration]) {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {name} | {returned} | {} | {} | {} |",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 95 / 100]),
        ms(times[times.len() - 1])
    );
}

/// Replaces the trail with `records` generated ones, spread evenly over the
/// four months from `first` to now.
async fn load(store: &AuditStore, records: i64, first: Month) {
    let AuditStore::Postgres(pool) = store else {
        unreachable!("a PostgreSQL URL");
    };
    println!("loading {records} records (once; kept in warden_bench_trail)");
    sqlx::query("TRUNCATE audit_records, audit_chains, audit_archives")
        .execute(pool)
        .await
        .expect("truncate");
    warden::audit::partitions::ensure(store, first.start())
        .await
        .expect("partitions");
    warden::audit::partitions::ensure(store, Utc::now())
        .await
        .expect("partitions");
    for chain in 0..CHAINS {
        sqlx::query(
            "INSERT INTO audit_chains (chain_id, host, started_at, head_seq, head_hash) \
             VALUES ($1, 'bench', $2, $3, '')",
        )
        .bind(format!("chain-{chain}"))
        .bind(first.start())
        .bind(records / CHAINS)
        .execute(pool)
        .await
        .expect("chain");
    }
    let span_us = (Utc::now() - first.start())
        .num_microseconds()
        .expect("span");
    let started = Instant::now();
    let mut lo = 0;
    while lo < records {
        let hi = (lo + CHUNK).min(records) - 1;
        sqlx::query(
            "INSERT INTO audit_records (chain_id, seq, prev_hash, hash, call_id, recorded_at, \
             principal, tenant, session, tool, plugin, plugin_sha256, policy_hash, decision, \
             reasons, args_digest, outcome, output_digest, error, duration_us, intent) \
             SELECT 'chain-' || (g % $3), g / $3, \
               md5(g::text) || md5((g + 1)::text), md5((g + 2)::text) || md5((g + 3)::text), \
               'call-' || CASE WHEN g % 100 = 1 AND (g - 1) % 100000 <> 0 THEN g - 1 ELSE g END, \
               $4::timestamptz + make_interval(secs => (g::float8 * $5 / $6) / 1e6), \
               CASE WHEN g % 1000000 = 3 THEN 'user-rare' ELSE 'user-' || (g * 7919 % 1000) END, \
               'tenant-' || (g % 20), \
               CASE WHEN g % 4 = 0 THEN 'session-' || (g / 40) END, \
               'tool-' || (g % 50) || '.run', 'tool-' || (g % 50), md5('plugin'), \
               md5('policy') || md5('bundle'), \
               CASE WHEN g % 20 = 7 THEN 'deny' ELSE 'allow' END, \
               CASE WHEN g % 20 = 7 THEN '[\"not allowed\"]'::jsonb ELSE '[]'::jsonb END, \
               md5((g * 3)::text) || md5((g * 5)::text), \
               CASE WHEN g % 50 = 9 THEN 'plugin_error' ELSE 'ok' END, \
               md5((g * 7)::text) || md5((g * 11)::text), \
               CASE WHEN g % 50 = 9 THEN 'the plugin trapped' END, \
               200 + g % 900, g % 100 = 0 \
             FROM generate_series($1::bigint, $2::bigint) AS g",
        )
        .bind(lo)
        .bind(hi)
        .bind(CHAINS)
        .bind(first.start())
        .bind(span_us as f64)
        .bind(records as f64)
        .execute(pool)
        .await
        .expect("load");
        lo = hi + 1;
        println!("  {lo} records in {:.0} s", started.elapsed().as_secs_f64());
    }
    sqlx::query("ANALYZE audit_records")
        .execute(pool)
        .await
        .expect("analyze");
}
