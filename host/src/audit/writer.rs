//! The single writer of one chain: chains queued records, commits them in
//! groups, and answers each caller.
//!
//! Failure model (docs/audit.md states it for operators):
//! - A record the store refuses for what it contains (a *data* error) fails
//!   alone: the batch is split in halves until the refused record stands by
//!   itself; the others are committed, re-chained in order. Records are made
//!   storable before they are hashed ([`super::storable`]), so this is the
//!   last line of defence, not the normal path.
//! - Every commit is bounded by `commit_timeout`. A commit that times out, or
//!   a store that cannot be reached, counts as *unavailable*: the batch goes
//!   to the spool if there is one, else its callers are denied.
//! - After an unavailable store the writer backs off (100 ms doubling to 5 s)
//!   and then probes the store in a task of its own: until a probe answers,
//!   batches go straight to the spool (or are denied at once) instead of each
//!   waiting for a time-out, and the spool is read only after one does.
//! - Callers are told `the audit store is unavailable` or `the audit record
//!   could not be stored`; the store's own error is logged, never returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::spool::{Spool, SpooledRecord};
use super::{AuditRecord, AuditStore, MAX_BATCH, StoredRecord, chain_hash};

/// The reply a caller gets.
pub(super) type Reply = std::result::Result<(), String>;

/// What callers are told when their record is not in the trail because the store is down.
pub(super) const UNAVAILABLE: &str = "the audit store is unavailable";
/// What a caller is told when the store refused its record for what it contains.
const UNSTORABLE: &str = "the audit record could not be stored";

/// First and longest wait before retrying a store that failed.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often a writer whose store is failing looks for its probe's answer.
const PROBE_POLL: Duration = Duration::from_millis(20);
/// How often a writer with an idle, empty spool looks for files left by dead processes.
const ADOPT_INTERVAL: Duration = Duration::from_secs(30);

/// What the writer shares with its handles: how much waits for an answer
/// and whether records can be written.
#[derive(Debug, Default)]
pub(super) struct Status {
    /// Records handed over and not yet answered.
    pub(super) outstanding: AtomicUsize,
    /// The last attempt to spool records failed.
    pub(super) spool_failing: AtomicBool,
    pub(super) metrics: crate::metrics::AuditMetrics,
}

pub(super) struct Pending {
    pub(super) record: AuditRecord,
    pub(super) done: oneshot::Sender<Reply>,
}

/// Why a commit failed.
#[derive(Debug)]
enum Failure {
    /// The store refused something in the records; other records may go through.
    Data(String),
    /// The store could not be reached, answered too late, or failed as a whole.
    Unavailable(String),
}

impl Failure {
    fn from_sqlx(e: &sqlx::Error) -> Failure {
        let data = match e {
            sqlx::Error::Encode(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL classes 22 (data exception: a NUL in text, a bad
                // jsonb escape) and 54 (program limit: an index entry too
                // large); SQLite's TOOBIG (18).
                code.starts_with("22") || code.starts_with("54") || code == "18"
            }),
            _ => false,
        };
        if data {
            Failure::Data(e.to_string())
        } else {
            Failure::Unavailable(e.to_string())
        }
    }
}

pub(super) struct Writer {
    store: AuditStore,
    chain_id: String,
    host: String,
    head_seq: i64,
    head_hash: String,
    /// Whether the chain row exists in the store.
    registered: bool,
    /// Whether migrations have been applied (a host with a spool may start without its store).
    migrated: bool,
    spool: Option<Spool>,
    commit_timeout: Duration,
    /// While the store is failing: no attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Whether a commit of unknown fate means the head must be re-read first.
    head_unknown: bool,
    /// The answer of a probe of a failing store, while it runs.
    probe: Option<oneshot::Receiver<Reply>>,
    status: Arc<Status>,
}

impl Writer {
    pub(super) fn new(
        store: AuditStore,
        chain_id: String,
        host: String,
        spool: Option<Spool>,
        commit_timeout: Duration,
        migrated: bool,
        status: Arc<Status>,
    ) -> Writer {
        Writer {
            store,
            chain_id,
            host,
            head_seq: -1,
            head_hash: super::GENESIS_HASH.to_string(),
            registered: false,
            migrated,
            spool,
            commit_timeout,
            // A store not yet migrated is probed (and migrated) before its first use.
            retry_at: (!migrated).then(Instant::now),
            backoff: BACKOFF_MIN,
            head_unknown: false,
            probe: None,
            status,
        }
    }

    pub(super) async fn run(mut self, mut queue: mpsc::Receiver<Pending>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        let mut next_adopt = Instant::now() + ADOPT_INTERVAL;
        loop {
            if self.spool_waiting() && self.store_ready() {
                self.drain().await;
            }
            let wait = if self.retry_at.is_some() {
                // The store is failing: look at the probe's answer now and then.
                Some(PROBE_POLL)
            } else if self.spool_waiting() {
                Some(BACKOFF_MIN)
            } else if self.spool.is_some() {
                Some(next_adopt.saturating_duration_since(Instant::now()))
            } else {
                None
            };
            let received = match wait {
                Some(wait) => {
                    match tokio::time::timeout(wait, queue.recv_many(&mut batch, MAX_BATCH)).await {
                        Ok(n) => n,
                        Err(_) => {
                            // Idle with a failing store: probe it anyway, so
                            // the first call after it is back is not denied.
                            if self.retry_at.is_some() {
                                self.store_ready();
                            }
                            if Instant::now() >= next_adopt {
                                next_adopt = Instant::now() + ADOPT_INTERVAL;
                                self.adopt();
                            }
                            continue;
                        }
                    }
                }
                None => queue.recv_many(&mut batch, MAX_BATCH).await,
            };
            if received == 0 {
                return;
            }
            let replies = self.write(&batch).await;
            // No longer outstanding before anyone is answered: a caller who
            // has its answer never finds its record still counted.
            self.status
                .outstanding
                .fetch_sub(received, Ordering::Relaxed);
            for (pending, reply) in batch.drain(..).zip(replies) {
                // The caller may have gone away; its record is committed regardless.
                let _ = pending.done.send(reply);
            }
        }
    }

    fn spool_waiting(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// Whether the store may be used now: it has not failed, or a probe
    /// since has found it answering. A probe runs in its own task once the
    /// back-off is over, so waiting for an unreachable server never holds up
    /// the writer: meanwhile batches are spooled, or denied at once.
    fn store_ready(&mut self) -> bool {
        let Some(retry_at) = self.retry_at else {
            return true;
        };
        if let Some(probe) = &mut self.probe {
            let answer = match probe.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => return false,
                Err(oneshot::error::TryRecvError::Closed) => Err("the probe stopped".to_string()),
                Ok(answer) => answer,
            };
            self.probe = None;
            return match answer {
                Ok(()) => {
                    self.migrated = true;
                    self.store_answered();
                    true
                }
                Err(e) => {
                    self.store_failed(&e);
                    false
                }
            };
        }
        if Instant::now() >= retry_at {
            let (answer, probe) = oneshot::channel();
            let (store, migrated, bound) = (self.store.clone(), self.migrated, self.commit_timeout);
            tokio::spawn(async move {
                let attempt = async {
                    if !migrated {
                        store.migrate().await.map_err(|e| e.to_string())?;
                    }
                    store.ping().await.map_err(|e| e.to_string())
                };
                let result = tokio::time::timeout(bound, attempt)
                    .await
                    .unwrap_or_else(|_| Err("the probe timed out".to_string()));
                let _ = answer.send(result);
            });
            self.probe = Some(probe);
        }
        false
    }

    fn store_failed(&mut self, error: &str) {
        if self.retry_at.is_none() {
            tracing::warn!(%error, "audit store unavailable");
            self.backoff = BACKOFF_MIN;
        } else {
            tracing::debug!(%error, "audit store still unavailable");
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
        self.retry_at = Some(Instant::now() + self.backoff);
    }

    fn store_answered(&mut self) {
        if self.retry_at.take().is_some() {
            tracing::info!("audit store available again");
        }
        self.backoff = BACKOFF_MIN;
    }

    fn adopt(&mut self) {
        if let Some(spool) = self.spool.as_mut()
            && let Err(e) = spool.adopt()
        {
            tracing::error!(error = %e, "cannot look for audit spool files left by other processes");
        }
    }

    /// Commits (or spools) one batch; one reply per record, in order.
    async fn write(&mut self, batch: &[Pending]) -> Vec<Reply> {
        let records: Vec<&AuditRecord> = batch.iter().map(|p| &p.record).collect();
        // While our own records wait in the spool, newer ones join them, so
        // the chain reaches the store in order.
        if self.spool.as_ref().is_some_and(Spool::holds_own) {
            let reply = self.fallback(&records, "earlier records are still spooled");
            return vec![reply; batch.len()];
        }
        if !self.store_ready() {
            let reply = self.fallback(
                &records,
                "the store is failing; waiting for a probe to answer",
            );
            return vec![reply; batch.len()];
        }
        match self.commit(&records).await {
            Ok(()) => vec![Ok(()); batch.len()],
            Err(Failure::Unavailable(e)) => {
                let reply = self.fallback(&records, &e);
                vec![reply; batch.len()]
            }
            Err(Failure::Data(e)) => {
                tracing::warn!(error = %e, records = records.len(), "the audit store refused a batch; isolating the record(s) it refuses");
                self.isolate(&records).await
            }
        }
    }

    /// Commits a batch the store refused, in halves, until each refused record
    /// stands alone; every other record is committed in order.
    async fn isolate(&mut self, records: &[&AuditRecord]) -> Vec<Reply> {
        let mut replies: Vec<Reply> = vec![Ok(()); records.len()];
        // Ranges still to commit, the next one last.
        let mut todo = vec![(records.len() / 2, records.len()), (0, records.len() / 2)];
        while let Some((start, end)) = todo.pop() {
            let Some(slice) = records.get(start..end).filter(|s| !s.is_empty()) else {
                continue;
            };
            match self.commit(slice).await {
                Ok(()) => {}
                Err(Failure::Data(e)) if slice.len() == 1 => {
                    let call_id = slice.first().map(|r| r.call_id.as_str()).unwrap_or("");
                    tracing::error!(call_id, error = %e, "the audit store refused a record; its call is denied");
                    if let Some(reply) = replies.get_mut(start) {
                        *reply = Err(UNSTORABLE.to_string());
                    }
                }
                Err(Failure::Data(_)) => {
                    let mid = start + slice.len() / 2;
                    todo.push((mid, end));
                    todo.push((start, mid));
                }
                Err(Failure::Unavailable(e)) => {
                    // The store went away meanwhile: the rest, in order, spools or fails.
                    let mut rest = vec![(start, end)];
                    rest.extend(todo.drain(..).rev());
                    let indices: Vec<usize> = rest.into_iter().flat_map(|(s, e)| s..e).collect();
                    let remaining: Vec<&AuditRecord> = indices
                        .iter()
                        .filter_map(|&i| records.get(i).copied())
                        .collect();
                    let reply = self.fallback(&remaining, &e);
                    for i in indices {
                        if let Some(r) = replies.get_mut(i) {
                            *r = reply.clone();
                        }
                    }
                }
            }
        }
        replies
    }

    /// Chains `records` after the current head.
    fn chain(&self, records: &[&AuditRecord]) -> Vec<StoredRecord> {
        let (mut seq, mut prev) = (self.head_seq, self.head_hash.clone());
        records
            .iter()
            .map(|record| {
                seq += 1;
                let hash = chain_hash(&self.chain_id, seq, &prev, record);
                StoredRecord {
                    id: 0,
                    chain_id: self.chain_id.clone(),
                    seq,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                    record: (*record).clone(),
                }
            })
            .collect()
    }

    fn advance(&mut self, rows: &[StoredRecord]) {
        if let Some(last) = rows.last() {
            self.head_seq = last.seq;
            self.head_hash = last.hash.clone();
        }
    }

    /// Chains `records` and commits them in one transaction, within the commit time-out.
    async fn commit(&mut self, records: &[&AuditRecord]) -> Result<(), Failure> {
        if self.head_unknown {
            self.refresh_head().await?;
        }
        let rows = self.chain(records);
        let started = rows
            .first()
            .map(|r| r.record.recorded_at)
            .unwrap_or_else(chrono::Utc::now);
        let (store, chain_id, host) = (&self.store, &self.chain_id, &self.host);
        let (migrated, registered) = (self.migrated, self.registered);
        let attempt = async {
            if !migrated {
                store
                    .migrate()
                    .await
                    .map_err(|e| Failure::Unavailable(e.to_string()))?;
            }
            // The chain is registered with its first record, so processes that
            // never record anything (`warden tools`) leave no empty chains behind.
            if !registered {
                store
                    .begin_chain(chain_id, host, started)
                    .await
                    .map_err(|e| Failure::from_sqlx(&e))?;
            }
            store
                .append(chain_id, &rows, false)
                .await
                .map_err(|e| Failure::from_sqlx(&e))
        };
        let timer = std::time::Instant::now();
        let result = match tokio::time::timeout(self.commit_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Unavailable(format!(
                "commit did not finish within {} ms",
                self.commit_timeout.as_millis()
            ))),
        };
        match &result {
            Ok(()) => {
                let metrics = &self.status.metrics;
                metrics
                    .commit_seconds
                    .observe(timer.elapsed().as_secs_f64());
                metrics.batch_size.observe(rows.len() as f64);
                self.migrated = true;
                self.registered = true;
                self.advance(&rows);
                self.store_answered();
            }
            Err(Failure::Data(_)) => {
                // The store answered: it is up, and the chain row may now exist.
                self.migrated = true;
                self.store_answered();
            }
            Err(Failure::Unavailable(e)) => {
                let e = e.clone();
                self.store_failed(&e);
                // The commit may have landed before the error was reported:
                // the next attempt first reads the head the store really has.
                // (With a spool the same rows are spooled, and draining them
                // is idempotent.)
                self.head_unknown = self.spool.is_none();
            }
        }
        result
    }

    /// Re-reads the chain head after a commit whose fate is unknown.
    async fn refresh_head(&mut self) -> Result<(), Failure> {
        let head =
            tokio::time::timeout(self.commit_timeout, self.store.chain_head(&self.chain_id)).await;
        let error = match head {
            Ok(Ok(head)) => {
                if let Some((seq, hash)) = head {
                    self.head_seq = seq;
                    self.head_hash = hash;
                }
                self.head_unknown = false;
                return Ok(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "reading the chain head timed out".to_string(),
        };
        self.store_failed(&error);
        Err(Failure::Unavailable(error))
    }

    /// Spools `records` (chained after the head), or fails them when there is no spool.
    fn fallback(&mut self, records: &[&AuditRecord], error: &str) -> Reply {
        let rows = self.chain(records);
        let Some(spool) = self.spool.as_mut() else {
            tracing::error!(%error, records = rows.len(), "audit records could not be committed; their calls are denied");
            return Err(UNAVAILABLE.to_string());
        };
        let first = !spool.holds_own();
        match spool.append(&self.host, &rows) {
            Ok(()) => {
                if first {
                    tracing::warn!(%error, "audit store unavailable; spooling records locally");
                }
                self.advance(&rows);
                self.status.spool_failing.store(false, Ordering::Relaxed);
                self.status.metrics.spooled.inc_by(rows.len() as u64);
                Ok(())
            }
            Err(io) => {
                self.status.spool_failing.store(true, Ordering::Relaxed);
                tracing::error!(store = %error, spool = %io, "audit records could be neither committed nor spooled; their calls are denied");
                Err(UNAVAILABLE.to_string())
            }
        }
    }

    /// Moves spooled records into the store, chain by chain, in order. A
    /// record the store refuses for its contents is set aside in the
    /// rejected file; anything else leaves the spool as it is, for later.
    async fn drain(&mut self) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        if let Err(e) = spool.adopt() {
            tracing::error!(error = %e, "cannot look for audit spool files left by other processes");
        }
        let records = match spool.read() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the audit spool");
                return self.store_failed("spool unreadable");
            }
        };
        let mut chains: Vec<(String, String, Vec<SpooledRecord>)> = Vec::new();
        for spooled in records {
            match chains
                .iter_mut()
                .find(|(id, _, _)| *id == spooled.row.chain_id)
            {
                Some((_, _, rows)) => rows.push(spooled),
                None => chains.push((
                    spooled.row.chain_id.clone(),
                    spooled.host.clone(),
                    vec![spooled],
                )),
            }
        }
        let mut rejected = 0usize;
        for (chain_id, host, records) in &chains {
            match self.drain_chain(chain_id, host, records).await {
                Ok(n) => rejected += n,
                Err(e) => return self.store_failed(&e),
            }
            if *chain_id == self.chain_id {
                self.registered = true;
            }
        }
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        match spool.clear() {
            Ok(()) => tracing::info!(
                chains = chains.len(),
                rejected,
                "audit spool drained into the store"
            ),
            Err(e) => tracing::error!(error = %e, "cannot clear the drained audit spool"),
        }
    }

    /// Stores one chain's spooled records; returns how many were set aside as unstorable.
    async fn drain_chain(
        &self,
        chain_id: &str,
        host: &str,
        records: &[SpooledRecord],
    ) -> std::result::Result<usize, String> {
        let bounded = |what: &'static str| {
            move |elapsed: tokio::time::error::Elapsed| format!("{what}: {elapsed}")
        };
        let started = records
            .first()
            .map(|r| r.row.record.recorded_at)
            .unwrap_or_else(chrono::Utc::now);
        tokio::time::timeout(
            self.commit_timeout,
            self.store.begin_chain(chain_id, host, started),
        )
        .await
        .map_err(bounded("registering a spooled chain"))?
        .map_err(|e| e.to_string())?;
        let mut rejected = 0;
        for chunk in records.chunks(MAX_BATCH) {
            let rows: Vec<StoredRecord> = chunk.iter().map(|r| r.row.clone()).collect();
            let stored = tokio::time::timeout(
                self.commit_timeout,
                self.store.append(chain_id, &rows, true),
            )
            .await
            .map_err(bounded("draining the spool"))?;
            let Err(e) = stored else { continue };
            if let Failure::Unavailable(e) = Failure::from_sqlx(&e) {
                return Err(e);
            }
            // Something in this chunk is refused: one at a time, setting the refused aside.
            for (record, row) in chunk.iter().zip(rows) {
                let stored = tokio::time::timeout(
                    self.commit_timeout,
                    self.store
                        .append(chain_id, std::slice::from_ref(&row), true),
                )
                .await
                .map_err(bounded("draining the spool"))?;
                match stored.map_err(|e| Failure::from_sqlx(&e)) {
                    Ok(()) => {}
                    Err(Failure::Unavailable(e)) => return Err(e),
                    Err(Failure::Data(e)) => {
                        rejected += 1;
                        tracing::error!(chain_id, seq = row.seq, call_id = %row.record.call_id, error = %e,
                            "the audit store refuses a spooled record; it is kept in the spool's .rejected file and its chain will show a gap");
                        if let Some(spool) = &self.spool
                            && let Err(io) = spool.reject(record, &e)
                        {
                            return Err(format!("cannot set aside an unstorable record: {io}"));
                        }
                    }
                }
            }
        }
        Ok(rejected)
    }
}
