//! The spend ledger alone: one reservation and its settlement per
//! operation (what budgets add to a completion), against PostgreSQL and
//! SQLite, with one budget every caller shares (every reservation queues on
//! its one period row: the contention case) and with a budget per caller,
//! at 1, 8 and 64 concurrent callers. The ledger has its own pool of 8
//! connections, its commits not waiting for their log flush, as in `warden
//! serve` (`Kernel::start` says why).
//!
//! Run with `cargo bench -p warden --bench ledger` (also part of `cargo
//! xtask bench`); under `cargo test -p warden --bench ledger` it runs a
//! tenth as long, as a smoke test.

#![allow(clippy::expect_used, reason = "a benchmark stops at the first failure")]

#[path = "../../tests/e2e/harness.rs"]
mod harness;
/// The e2e tests' plugin fixtures, which the harness names.
#[allow(dead_code, reason = "the benchmark loads no plugin")]
mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use warden::audit::{AuditStore, Durability};
use warden::budget::{Amounts, Budget, Ledger, Period, Scope, Settlement, Unit, Who};

/// Callers in the largest run, each with its own principal.
const CALLERS: usize = 64;

/// A reservation's worst case and what the call then cost.
const WORST: Amounts = Amounts {
    micro_usd: 100,
    tokens: 200,
    requests: 1,
};
const COST: Amounts = Amounts {
    micro_usd: 10,
    tokens: 20,
    requests: 1,
};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(if full {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(300)
    }));
}

/// A budget with room for every operation of the run.
fn budget(name: String, principal: Option<String>) -> Budget {
    Budget {
        name,
        scope: Scope {
            principal,
            tenant: Some("acme".into()),
            ..Scope::default()
        },
        unit: Unit::Usd,
        period: Period::Total,
        limit: i64::MAX / 2,
    }
}

async fn bench(duration: Duration) {
    if duration < Duration::from_secs(1) {
        println!("(a smoke run under `cargo test`: numbers are not representative)");
    }
    println!("store        budgets       callers   ops/s   p50 µs   p99 µs");
    for postgres in [true, false] {
        for per_caller in [false, true] {
            for callers in [1, 8, CALLERS] {
                let db = if postgres {
                    Some(harness::TestDb::create().await)
                } else {
                    None
                };
                let dir = tempfile::tempdir().expect("temp dir");
                let url = match &db {
                    Some(db) => db.url.clone(),
                    None => format!("sqlite://{}", dir.path().join("audit.db").display()),
                };
                // As the kernel opens it: commits not waiting for their flush.
                let store = AuditStore::connect(&url, Duration::from_secs(5), Durability::Commit)
                    .await
                    .expect("store");
                let budgets = if per_caller {
                    (0..CALLERS)
                        .map(|i| budget(format!("caller-{i}"), Some(format!("p{i}"))))
                        .collect()
                } else {
                    vec![budget("shared".into(), None)]
                };
                let ledger = Arc::new(Ledger::new(store, budgets));
                let (ops, mut latencies) = run(&ledger, callers, duration).await;
                latencies.sort();
                let at = |p: f64| {
                    latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
                };
                println!(
                    "{:<12} {:<13} {:>7} {:>7.0} {:>8.0} {:>8.0}",
                    if postgres { "PostgreSQL" } else { "SQLite" },
                    if per_caller { "one each" } else { "one shared" },
                    callers,
                    ops as f64 / duration.as_secs_f64(),
                    at(0.5),
                    at(0.99),
                );
                if let Some(db) = db {
                    db.drop_database().await;
                }
            }
        }
    }
}

/// `callers` tasks reserving and settling for `duration` (after a warm-up):
/// operations done, and each one's latency.
async fn run(ledger: &Arc<Ledger>, callers: usize, duration: Duration) -> (usize, Vec<Duration>) {
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let principal = format!("p{i}");
                let who = Who {
                    principal: &principal,
                    tenant: "acme",
                    team: None,
                    model: Some("fast"),
                };
                let once = || async {
                    let call_id = uuid::Uuid::new_v4().to_string();
                    let started = Instant::now();
                    ledger
                        .reserve(&call_id, who, WORST, true, Duration::from_secs(60))
                        .await
                        .expect("reserved")
                        .expect("a budget applies");
                    ledger
                        .settle(&call_id, 1, Settlement::Charged(COST))
                        .await
                        .expect("settled");
                    started.elapsed()
                };
                for _ in 0..20 {
                    once().await;
                }
                let mut latencies = Vec::new();
                let end = Instant::now() + duration;
                while Instant::now() < end {
                    latencies.push(once().await);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("caller"));
    }
    (all.len(), all)
}
