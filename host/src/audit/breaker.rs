//! Fail fast while a database cannot be reached. Without this, every use of
//! a down database waits out the pool's connection time-out before it is
//! denied; with it, the first failure to reach the database opens the
//! breaker, later uses are refused at once (`PoolTimedOut`), and one probe
//! at a time, in the background and backing off from 100 ms to 5 s, closes
//! it when the database answers again. Going down and coming back are
//! logged here, once each.
//!
//! The session store and the spend ledger use one each; the audit writer
//! has its own equivalent (`writer.rs`), tied to its spool.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{AuditStore, on_pool};

/// First and longest wait before probing a database that could not be reached.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A database's reachability, shared by every user of one pool.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    /// What the database is to its users, for the log (`the session store`).
    what: &'static str,
    /// The database, for probes.
    store: AuditStore,
    health: Arc<Mutex<Health>>,
}

#[derive(Debug, Default)]
struct Health {
    /// Set while the database is down: when the next probe may start.
    next_probe: Option<Instant>,
    backoff: Duration,
    probing: bool,
}

/// Whether `error` says the database could not be reached (rather than
/// refusing a statement).
fn unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    )
}

impl Breaker {
    pub(crate) fn new(what: &'static str, store: &AuditStore) -> Breaker {
        Breaker {
            what,
            store: store.clone(),
            health: Arc::default(),
        }
    }

    /// `Err(PoolTimedOut)` at once while the database is down, starting a
    /// probe when one is due; `Ok` while it answers.
    pub(crate) fn check(&self) -> Result<(), sqlx::Error> {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let Some(next_probe) = health.next_probe else {
            return Ok(());
        };
        if !health.probing && Instant::now() >= next_probe {
            health.probing = true;
            let breaker = self.clone();
            tokio::spawn(async move {
                let answered = on_pool!(&breaker.store, pool => {
                    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
                })
                .is_ok();
                let mut health = breaker.health.lock().unwrap_or_else(|e| e.into_inner());
                health.probing = false;
                if answered {
                    tracing::info!("{} answers again", breaker.what);
                    *health = Health::default();
                } else {
                    health.backoff = (health.backoff * 2).min(BACKOFF_MAX);
                    health.next_probe = Some(Instant::now() + health.backoff);
                }
            });
        }
        Err(sqlx::Error::PoolTimedOut)
    }

    /// Opens the breaker when `result` failed because the database could
    /// not be reached; passes `result` on.
    pub(crate) fn observe<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Err(cause) = &result
            && unreachable(cause)
        {
            let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
            if health.next_probe.is_none() {
                tracing::error!(error = %cause, "{} is unavailable; calls are denied", self.what);
                health.backoff = BACKOFF_MIN;
                health.next_probe = Some(Instant::now() + BACKOFF_MIN);
            }
        }
        result
    }
}
