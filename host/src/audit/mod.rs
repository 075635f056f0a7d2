//! Audit: one hash-chained record per call, written by a single batching writer.
//!
//! [`AuditLog::append`] hands a record to the writer task and waits until it is
//! committed; the writer chains records (`hash = sha256(prev_hash, record)`),
//! groups whatever is queued into one transaction, and answers each caller.
//! Each host process writes its own chain, so replicas can share a database.
//! [`verify`] recomputes every chain and names the first record that does not match.

mod spool;
mod store;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

pub use store::{AuditFilter, AuditStore};

use crate::error::{Error, Result};

/// `prev_hash` of the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Most records committed in one transaction.
const MAX_BATCH: usize = 512;
/// Records waiting for the writer before callers are made to wait.
const QUEUE_DEPTH: usize = 16_384;

/// What is recorded about one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unique id of the call, returned to the caller.
    pub call_id: String,
    /// When the call finished (microsecond precision).
    pub recorded_at: DateTime<Utc>,
    /// Who called.
    pub principal: String,
    /// The caller's tenant.
    pub tenant: String,
    /// Session or trace id supplied by the caller.
    pub session: Option<String>,
    /// Tool requested (`plugin.tool`).
    pub tool: String,
    /// Plugin that serves the tool, when it was resolved.
    pub plugin: Option<String>,
    /// SHA-256 of the plugin's component.
    pub plugin_sha256: Option<String>,
    /// The upstream MCP server that served the call (JSON: transport,
    /// endpoint, server name and version, protocol), for gateway tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Hash of the policy bundle that decided.
    pub policy_hash: String,
    /// `allow`, `deny`, or `none` when the call failed before policy.
    pub decision: String,
    /// Policy reasons.
    pub reasons: Vec<String>,
    /// SHA-256 of the canonical JSON arguments (never the arguments themselves).
    pub args_digest: String,
    /// `ok`, or the error code.
    pub outcome: String,
    /// SHA-256 of the canonical JSON output, for calls that produced one
    /// (never the output itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_digest: Option<String>,
    /// Error message, when the call failed.
    pub error: Option<String>,
    /// Time from request to response, in microseconds.
    pub duration_us: i64,
    /// An intent record: written and committed before a side-effecting tool
    /// runs; the call's outcome record follows with the same `call_id`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intent: bool,
    /// How the shadow bundle decided, when it disagreed with the active one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
    /// The policy input (JSON), when `audit.store_policy_input` is on; fields
    /// the policy asked to redact are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_input: Option<String>,
    /// What the sandbox refused the call (outbound requests, response bodies
    /// cut or scrubbed), even when the plugin swallowed the refusal. Empty for
    /// most calls, and then left out of the hash, so older chains verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<String>,
}

impl AuditRecord {
    /// Truncates the timestamp to microseconds, the precision both stores keep.
    pub fn now() -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A record as stored: its place in its chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// Row id in the store (insertion order).
    pub id: i64,
    /// The chain (host process) that wrote it.
    pub chain_id: String,
    /// Position in the chain, from 0.
    pub seq: i64,
    /// Hash of the previous record in the chain.
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// The hash of a record at `seq` in `chain_id` following `prev_hash`.
pub fn chain_hash(chain_id: &str, seq: i64, prev_hash: &str, record: &AuditRecord) -> String {
    #[derive(Serialize)]
    struct Hashed<'a> {
        v: u8,
        chain_id: &'a str,
        seq: i64,
        prev_hash: &'a str,
        recorded_at: String,
        record: &'a AuditRecord,
    }
    let hashed = Hashed {
        v: 1,
        chain_id,
        seq,
        prev_hash,
        recorded_at: record
            .recorded_at
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        record,
    };
    // Serialising a struct of strings, integers and string lists cannot fail.
    let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

struct Pending {
    record: AuditRecord,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

/// Handle to the audit writer. Cloning is cheap; all clones feed one chain.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
    store: AuditStore,
}

impl AuditLog {
    /// Connects to `url`, applies migrations, and starts the writer task for
    /// a new chain. With `spool`, records that cannot be committed go to that
    /// local file and are drained into the store when it is back; records a
    /// previous process left there are drained first.
    pub async fn open(url: &str, spool: Option<&std::path::Path>) -> Result<AuditLog> {
        let store = AuditStore::connect(url).await?;
        store.migrate().await?;
        let spool =
            match spool {
                Some(path) => Some(spool::Spool::open(path).map_err(|e| {
                    Error::Audit(format!("cannot open spool {}: {e}", path.display()))
                })?),
                None => None,
            };
        let chain_id = uuid::Uuid::new_v4().to_string();
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            store: store.clone(),
            chain_id: chain_id.clone(),
            host: host_label(),
            head_seq: -1,
            head_hash: GENESIS_HASH.to_string(),
            registered: false,
            spool,
        };
        tokio::spawn(writer.run(receiver));
        Ok(AuditLog { queue, store })
    }

    /// Appends a record and waits until it is durably committed.
    /// An `Err` means the record is not in the trail: the caller must fail closed.
    pub async fn append(&self, record: AuditRecord) -> std::result::Result<(), String> {
        self.enqueue(record).await?.committed().await
    }

    /// Hands a record to the writer (waiting only while the queue is full) and
    /// returns the [`Commit`] to await; the record is in the trail only once
    /// that resolves `Ok`.
    pub async fn enqueue(&self, record: AuditRecord) -> std::result::Result<Commit, String> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending { record, done })
            .await
            .map_err(|_| "audit writer has stopped".to_string())?;
        Ok(Commit(committed))
    }

    /// The underlying store, for queries and verification.
    pub fn store(&self) -> &AuditStore {
        &self.store
    }
}

/// A queued record's commit, from [`AuditLog::enqueue`].
#[derive(Debug)]
pub struct Commit(oneshot::Receiver<std::result::Result<(), String>>);

impl Commit {
    /// Waits until the record is durably committed (or spooled); `Err` means
    /// it is not in the trail.
    pub async fn committed(self) -> std::result::Result<(), String> {
        self.0
            .await
            .map_err(|_| "audit writer has stopped".to_string())?
    }
}

/// How often a spooling writer retries the store while idle.
const DRAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// The single writer of one chain.
struct Writer {
    store: AuditStore,
    chain_id: String,
    host: String,
    head_seq: i64,
    head_hash: String,
    /// Whether the chain row exists in the store.
    registered: bool,
    spool: Option<spool::Spool>,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Pending>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        loop {
            let spooled = self.spool.as_ref().is_some_and(|s| !s.is_empty());
            if spooled {
                self.drain().await;
            }
            let received = if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
                match tokio::time::timeout(DRAIN_INTERVAL, queue.recv_many(&mut batch, MAX_BATCH))
                    .await
                {
                    Ok(n) => n,
                    Err(_) => continue,
                }
            } else {
                queue.recv_many(&mut batch, MAX_BATCH).await
            };
            if received == 0 {
                return;
            }
            let reply = self.write(&batch).await;
            for pending in batch.drain(..) {
                // The caller may have gone away; its record is committed regardless.
                let _ = pending.done.send(reply.clone());
            }
        }
    }

    /// Chains, then commits (or spools) one batch; `Ok` means every record is durable.
    async fn write(&mut self, batch: &[Pending]) -> std::result::Result<(), String> {
        let mut rows = Vec::with_capacity(batch.len());
        let (mut seq, mut prev) = (self.head_seq, self.head_hash.clone());
        for pending in batch {
            seq += 1;
            let hash = chain_hash(&self.chain_id, seq, &prev, &pending.record);
            rows.push(StoredRecord {
                id: 0,
                chain_id: self.chain_id.clone(),
                seq,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
                record: pending.record.clone(),
            });
        }
        let spooling = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        let committed = if spooling {
            // Order matters: while older records wait in the spool, newer ones join them.
            Err("earlier records are still spooled".to_string())
        } else {
            self.commit(&rows).await
        };
        let result = match (committed, self.spool.as_mut()) {
            (Ok(()), _) => Ok(()),
            (Err(e), Some(spool)) => {
                if !spooling {
                    tracing::warn!(error = %e, "audit store unavailable; spooling records locally");
                }
                spool
                    .append(&self.host, &rows)
                    .map_err(|io| format!("audit store: {e}; spool: {io}"))
            }
            (Err(e), None) => {
                tracing::error!(error = %e, records = rows.len(), "audit commit failed");
                // The commit may have landed before the error was reported:
                // continue from whatever head the store really has.
                if let Ok((seq, hash)) = self.store.chain_head(&self.chain_id).await {
                    self.head_seq = seq;
                    self.head_hash = hash;
                }
                Err(e)
            }
        };
        if result.is_ok() {
            self.head_seq = seq;
            self.head_hash = prev;
        }
        result
    }

    async fn commit(&mut self, rows: &[StoredRecord]) -> std::result::Result<(), String> {
        // The chain is registered with its first record, so processes that
        // never record anything (`warden tools`) leave no empty chains behind.
        if !self.registered {
            let started = rows
                .first()
                .map(|r| r.record.recorded_at)
                .unwrap_or_else(chrono::Utc::now);
            self.store
                .begin_chain(&self.chain_id, &self.host, started)
                .await
                .map_err(|e| format!("registering audit chain: {e}"))?;
            self.registered = true;
        }
        self.store
            .append(&self.chain_id, rows, false)
            .await
            .map_err(|e| format!("audit store: {e}"))
    }

    /// Moves spooled records into the store, chain by chain, in order.
    async fn drain(&mut self) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let records = match spool.read() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the audit spool");
                return;
            }
        };
        let mut chains: Vec<(String, String, Vec<StoredRecord>)> = Vec::new();
        for spooled in records {
            match chains
                .iter_mut()
                .find(|(id, _, _)| *id == spooled.row.chain_id)
            {
                Some((_, _, rows)) => rows.push(spooled.row),
                None => chains.push((
                    spooled.row.chain_id.clone(),
                    spooled.host,
                    vec![spooled.row],
                )),
            }
        }
        for (chain_id, host, rows) in &chains {
            let started = rows
                .first()
                .map(|r| r.record.recorded_at)
                .unwrap_or_else(chrono::Utc::now);
            let drained = async {
                self.store.begin_chain(chain_id, host, started).await?;
                for chunk in rows.chunks(MAX_BATCH) {
                    self.store.append(chain_id, chunk, true).await?;
                }
                Ok::<(), Error>(())
            };
            if let Err(e) = drained.await {
                tracing::debug!(error = %e, "audit store still unavailable; records stay spooled");
                return;
            }
            if *chain_id == self.chain_id {
                self.registered = true;
            }
        }
        if let Some(spool) = self.spool.as_mut() {
            match spool.clear() {
                Ok(()) => {
                    tracing::info!(chains = chains.len(), "audit spool drained into the store")
                }
                Err(e) => tracing::error!(error = %e, "cannot clear the drained audit spool"),
            }
        }
    }
}

fn host_label() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{host}/{}", std::process::id())
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Chains checked.
    pub chains: usize,
    /// Records checked.
    pub records: usize,
    /// The first problem found, naming the record; `None` when the trail is intact.
    pub failure: Option<String>,
}

/// Which part of the trail to verify: records recorded in `[since, until)`.
/// Without `since`, chains are checked from their first record; without
/// `until`, up to their registered head.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyRange {
    /// Recorded at or after.
    pub since: Option<DateTime<Utc>>,
    /// Recorded before.
    pub until: Option<DateTime<Utc>>,
}

/// Recomputes every chain: sequence numbers, links, hashes and chain heads.
pub async fn verify(store: &AuditStore) -> Result<VerifyReport> {
    verify_range(store, VerifyRange::default()).await
}

/// [`verify`] limited to a time range. A range starting after a chain's first
/// record trusts the `prev_hash` of the range's first record.
pub async fn verify_range(store: &AuditStore, range: VerifyRange) -> Result<VerifyReport> {
    let chains = store.chains().await?;
    let mut report = VerifyReport {
        chains: chains.len(),
        records: 0,
        failure: None,
    };
    for chain in &chains {
        let records: Vec<StoredRecord> = store
            .chain_records(&chain.chain_id)
            .await?
            .into_iter()
            .filter(|r| range.since.is_none_or(|s| r.record.recorded_at >= s))
            .filter(|r| range.until.is_none_or(|u| r.record.recorded_at < u))
            .collect();
        if records.is_empty() && (range.since.is_some() || range.until.is_some()) {
            continue;
        }
        report.records += records.len();
        if let Some(failure) = verify_chain(chain, &records, range) {
            report.failure = Some(failure);
            return Ok(report);
        }
    }
    if let Some(orphan) = store.first_orphan_record().await? {
        report.failure = Some(format!(
            "record id {} claims chain {} which is not registered",
            orphan.0, orphan.1
        ));
    }
    Ok(report)
}

/// A chain's registered head.
#[derive(Debug, Clone)]
pub struct ChainHead {
    /// Chain id.
    pub chain_id: String,
    /// Host and pid that wrote it.
    pub host: String,
    /// Sequence number of the last committed record (-1 when empty).
    pub head_seq: i64,
    /// Hash of the last committed record.
    pub head_hash: String,
}

fn verify_chain(chain: &ChainHead, records: &[StoredRecord], range: VerifyRange) -> Option<String> {
    let (mut expected_seq, mut prev) = match (range.since, records.first()) {
        (Some(_), Some(first)) => (first.seq, first.prev_hash.clone()),
        _ => (0, GENESIS_HASH.to_string()),
    };
    for r in records {
        let name = format!(
            "record id {} (chain {}, seq {}, call {})",
            r.id, r.chain_id, r.seq, r.record.call_id
        );
        if r.seq != expected_seq {
            return Some(format!(
                "{name}: expected seq {expected_seq}; records {expected_seq}..{} are missing or reordered",
                r.seq - 1
            ));
        }
        if r.prev_hash != prev {
            return Some(format!(
                "{name}: prev_hash does not match the hash of the record before it"
            ));
        }
        let hash = chain_hash(&r.chain_id, r.seq, &r.prev_hash, &r.record);
        if hash != r.hash {
            return Some(format!("{name}: contents do not match its hash (edited)"));
        }
        prev = hash;
        expected_seq += 1;
    }
    if range.until.is_none() && (expected_seq - 1 != chain.head_seq || prev != chain.head_hash) {
        return Some(format!(
            "chain {} ({}): head says seq {} but the last record is seq {}; records were deleted from its end",
            chain.chain_id,
            chain.host,
            chain.head_seq,
            expected_seq - 1
        ));
    }
    None
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Audit(e.to_string())
    }
}
