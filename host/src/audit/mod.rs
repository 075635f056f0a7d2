//! Audit: one hash-chained record per call, written by a single batching writer.
//!
//! [`AuditLog::append`] hands a record to the writer task and waits until it is
//! committed; the writer chains records (`hash = sha256(prev_hash, record)`),
//! groups whatever is queued into one transaction, and answers each caller.
//! Each host process writes its own chain, so replicas can share a database.
//! [`verify`] recomputes every chain and names the first record that does not match.

pub mod archive;
mod breaker;
pub mod checkpoint;
pub mod partitions;
pub mod sealing;
mod spool;
mod storable;
mod store;
mod writer;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

pub(crate) use breaker::Breaker;
pub use sealing::TenantKeys;
pub(crate) use storable::escape_nul;
pub(crate) use store::on_pool;
pub use store::{AuditFilter, AuditStore, Durability};

use crate::error::{Error, Result};

/// `prev_hash` of the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Most records committed in one transaction.
const MAX_BATCH: usize = 512;
/// Records waiting for the writer before callers are made to wait.
const QUEUE_DEPTH: usize = 16_384;

/// What is recorded about one call. Its fields are the store's columns, by
/// name and in order (`store::COLUMNS`): adding a field here, to that list
/// and to a migration is all an audit field takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
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
    /// The call's fate over all decision points: `allow`, `deny` (by any
    /// stage, or because policy could not decide), or `none` when the call
    /// failed before policy.
    pub decision: String,
    /// Policy reasons of every stage, in stage order.
    #[sqlx(json)]
    pub reasons: Vec<String>,
    /// What each decision point decided, in the order they ran (`call`, then
    /// `output`). Empty in records written before stages were recorded, and
    /// then left out of the hash, so older chains verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[sqlx(try_from = "store::NullableJson<StageDecision>")]
    pub decisions: Vec<StageDecision>,
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
    #[sqlx(try_from = "store::NullableJson<String>")]
    pub refusals: Vec<String>,
    /// Every verifier's verdict on the call's input and output, in stage
    /// order: findings with their location and a digest of what matched,
    /// never the matched text. Empty when no verifier applied, and then left
    /// out of the hash, so older chains verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[sqlx(try_from = "store::NullableJson<VerdictRecord>")]
    pub verdicts: Vec<VerdictRecord>,
    /// For a completion served by the gateway (JSON): the model asked for,
    /// the provider's model id and origin, tokens used, cost in millionths
    /// of a dollar at the configured prices, and why it finished. None for
    /// tool calls, and then left out of the hash, so older chains verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
    /// A completion's request and answer (JSON), sealed under its tenant's
    /// key ([`sealing`]), when policy obliged keeping the text. None
    /// otherwise, and then left out of the hash, so older chains verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_text: Option<String>,
    /// What the call reserved against its budgets and what the ledger
    /// charged (JSON, [`crate::budget::Spend`]): a completion, or a tool
    /// call with a price. None when no budget applied, and then left out of
    /// the hash, so older chains verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<String>,
}

/// One verifier's verdict on one stage of a call, as recorded and as policy
/// sees it (`input.verdicts.NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// `input` (the arguments) or `output`.
    pub stage: String,
    /// The verifier's name in the host configuration.
    pub verifier: String,
    /// SHA-256 of its component.
    pub sha256: String,
    /// `clean`, `findings`, or `error` when the verifier failed, timed out,
    /// trapped or answered something malformed.
    pub verdict: String,
    /// Whether the operator marked the verifier advisory.
    pub advisory: bool,
    /// What it found.
    pub findings: Vec<FindingRecord>,
    /// Why the verdict is `error`.
    pub error: Option<String>,
}

/// One finding of a verifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// What was found (`aws-access-key-id`, `payment-card`, ...).
    pub kind: String,
    /// The label policy may add to the session for it (`secret`, `pii`, ...).
    pub label: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Confidence from 0 to 1, to three decimals.
    pub score: f64,
    /// JSON Pointer to the string in the content, when the finding has a place.
    pub pointer: Option<String>,
    /// Byte range of the match within that string.
    pub start: Option<u32>,
    /// One past its last byte.
    pub end: Option<u32>,
    /// SHA-256 of the matched text, never the text itself.
    pub digest: Option<String>,
    /// The verifier's one line about it, with the matched text removed.
    pub message: String,
}

/// One decision point's verdict, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageDecision {
    /// The decision point: `call` or `output`.
    pub stage: String,
    /// `allow`, `deny`, or `error` when policy could not decide.
    pub decision: String,
    /// The policy's reasons, or why it could not decide.
    pub reasons: Vec<String>,
}

impl AuditRecord {
    /// This record's decision at `stage`, if that decision point ran and was
    /// recorded.
    pub fn decision_at(&self, stage: &str) -> Option<&StageDecision> {
        self.decisions.iter().find(|d| d.stage == stage)
    }

    /// Truncates the timestamp to microseconds, the precision both stores keep.
    pub fn now() -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A record as stored: its place in its chain and its hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
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
    #[sqlx(flatten)]
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

/// How the audit writer behaves. See docs/audit.md.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Local spool for records the store cannot take. By default none: when
    /// the store is unavailable, calls are denied.
    pub spool: Option<std::path::PathBuf>,
    /// Longest a commit may take before the store counts as unavailable (the
    /// batch is then spooled, or denied). By default 2 s.
    pub commit_timeout: std::time::Duration,
    /// Secret ed25519 key file for signed checkpoints. By default none: no checkpoints.
    pub checkpoint_key: Option<std::path::PathBuf>,
    /// How often a checkpoint is signed when a key is set. By default every 60 s.
    pub checkpoint_interval: std::time::Duration,
    /// How durable a commit is before its calls are answered. By default flushed.
    pub durability: Durability,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            spool: None,
            commit_timeout: std::time::Duration::from_secs(2),
            checkpoint_key: None,
            checkpoint_interval: std::time::Duration::from_secs(60),
            durability: Durability::Flush,
        }
    }
}

/// Handle to the audit writer. Cloning is cheap; all clones feed one chain.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<writer::Pending>,
    store: AuditStore,
    status: std::sync::Arc<writer::Status>,
    spooled: bool,
    /// The last reachability check of the store, shared so that readiness
    /// probes reach the store at most once a second.
    last_check: std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool)>>>,
    /// Background tasks (checkpoints) stop when the last handle is gone.
    _alive: std::sync::Arc<()>,
}

impl AuditLog {
    /// Connects to `url`, applies migrations, and starts the writer task for
    /// a new chain. With a spool, records that cannot be committed go to that
    /// local file and are drained into the store when it is back; records a
    /// previous process left there are drained first. With a spool the host
    /// also starts while PostgreSQL is unreachable: migrations are applied
    /// once it answers.
    pub async fn open(url: &str, options: &AuditOptions) -> Result<AuditLog> {
        // Waiting for a connection is bounded more tightly than a commit: an
        // unreachable server then costs each attempt at most a second.
        let acquire = options
            .commit_timeout
            .min(std::time::Duration::from_secs(1));
        let store = AuditStore::connect(url, acquire, options.durability).await?;
        // Connecting is bounded by the commit time-out; migrating a new
        // database may take longer than one commit.
        let bound = options
            .commit_timeout
            .max(std::time::Duration::from_secs(30));
        let migrated = match tokio::time::timeout(bound, store.migrate()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) if options.spool.is_none() => return Err(e),
            Err(_) if options.spool.is_none() => {
                return Err(Error::Audit(format!(
                    "cannot open {}: no answer within {} ms",
                    store::redact(url),
                    bound.as_millis()
                )));
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "audit store unavailable at start; records are spooled until it answers");
                false
            }
            Err(_) => {
                tracing::warn!(
                    "audit store did not answer at start; records are spooled until it does"
                );
                false
            }
        };
        // The months ahead exist before the first record is written.
        let partitioned = migrated
            && tokio::time::timeout(bound, partitions::ensure(&store, Utc::now()))
                .await
                .is_ok_and(|created| created.is_ok());
        let spool =
            match &options.spool {
                Some(path) => Some(spool::Spool::open(path).map_err(|e| {
                    Error::Audit(format!("cannot open spool {}: {e}", path.display()))
                })?),
                None => None,
            };
        let signing_key = match &options.checkpoint_key {
            Some(path) => Some(checkpoint::load_signing_key(path)?),
            None => None,
        };
        let chain_id = uuid::Uuid::new_v4().to_string();
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let status = std::sync::Arc::new(writer::Status::default());
        let spooled = spool.is_some();
        let writer = writer::Writer::new(
            store.clone(),
            chain_id,
            host_label(),
            spool,
            options.commit_timeout,
            migrated,
            status.clone(),
        );
        tokio::spawn(writer.run(receiver));
        let alive = std::sync::Arc::new(());
        if let AuditStore::Postgres(_) = store {
            tokio::spawn(partitions::maintain(
                store.clone(),
                partitioned,
                std::sync::Arc::downgrade(&alive),
            ));
        }
        if let Some(key) = signing_key {
            tokio::spawn(checkpoints(
                store.clone(),
                key,
                options.checkpoint_interval,
                std::sync::Arc::downgrade(&alive),
            ));
        }
        Ok(AuditLog {
            queue,
            store,
            status,
            spooled,
            last_check: Default::default(),
            _alive: alive,
        })
    }

    /// Appends a record and waits until it is durably committed.
    /// An `Err` means the record is not in the trail: the caller must fail closed.
    pub async fn append(&self, record: AuditRecord) -> std::result::Result<(), String> {
        self.enqueue(record).await?.committed().await
    }

    /// Hands a record to the writer (waiting only while the queue is full) and
    /// returns the [`Commit`] to await; the record is in the trail only once
    /// that resolves `Ok`. The record is first made storable (NULs escaped,
    /// indexed values bounded), so what is hashed is what is stored.
    pub async fn enqueue(&self, mut record: AuditRecord) -> std::result::Result<Commit, String> {
        if storable::make_storable(&mut record) {
            tracing::debug!(call_id = %record.call_id, "audit record escaped to be storable");
        }
        let (done, committed) = oneshot::channel();
        self.status.outstanding.fetch_add(1, Ordering::Relaxed);
        if self
            .queue
            .send(writer::Pending { record, done })
            .await
            .is_err()
        {
            self.status.outstanding.fetch_sub(1, Ordering::Relaxed);
            return Err("audit writer has stopped".to_string());
        }
        Ok(Commit(committed))
    }

    /// What the writer measures (batch sizes, commit times, spooled records).
    pub fn metrics(&self) -> &crate::metrics::AuditMetrics {
        &self.status.metrics
    }

    /// Records handed to the writer and not yet committed, spooled or refused.
    pub fn outstanding(&self) -> usize {
        self.status.outstanding.load(Ordering::Relaxed)
    }

    /// Waits until every record handed to the writer so far has its answer,
    /// or `bound` has passed; returns how many are still outstanding.
    pub async fn flush(&self, bound: std::time::Duration) -> usize {
        let deadline = tokio::time::Instant::now() + bound;
        while self.outstanding() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.outstanding()
    }

    /// Whether a record handed over now would reach the trail: committed to
    /// the store, or spooled while the store is away. The store is asked at
    /// most once a second (a check takes at most a second).
    pub async fn health(&self) -> AuditHealth {
        let spool_usable = self.spooled && !self.status.spool_failing.load(Ordering::Relaxed);
        let mut last = self.last_check.lock().await;
        let reachable = match *last {
            Some((at, reachable)) if at.elapsed() < std::time::Duration::from_secs(1) => reachable,
            _ => {
                let bound = std::time::Duration::from_secs(1);
                let reachable = matches!(
                    tokio::time::timeout(bound, self.store.ping()).await,
                    Ok(Ok(()))
                );
                *last = Some((std::time::Instant::now(), reachable));
                reachable
            }
        };
        match (reachable, spool_usable) {
            (true, _) => AuditHealth::Committing,
            (false, true) => AuditHealth::Spooling,
            (false, false) => AuditHealth::Unavailable,
        }
    }

    /// The underlying store, for queries and verification.
    pub fn store(&self) -> &AuditStore {
        &self.store
    }
}

/// Where records handed to the writer now would go, from [`AuditLog::health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditHealth {
    /// The store answers: records are committed.
    Committing,
    /// The store does not answer; records go to the local spool.
    Spooling,
    /// Neither the store nor a spool takes records: calls are denied.
    Unavailable,
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

/// Signs a checkpoint every `interval` while the audit log lives, skipping
/// moments when no chain head moved.
async fn checkpoints(
    store: AuditStore,
    key: ed25519_dalek::SigningKey,
    interval: std::time::Duration,
    alive: std::sync::Weak<()>,
) {
    let signer = host_label();
    let mut last: Option<Vec<ChainHead>> = None;
    loop {
        tokio::time::sleep(interval).await;
        if alive.strong_count() == 0 {
            return;
        }
        let heads = match store.chains().await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read chain heads for a checkpoint");
                continue;
            }
        };
        let unchanged = last.as_ref().is_some_and(|l| {
            l.len() == heads.len()
                && l.iter()
                    .zip(&heads)
                    .all(|(a, b)| a.chain_id == b.chain_id && a.head_seq == b.head_seq)
        });
        // Nothing recorded yet, or nothing since the last one: nothing to attest.
        if unchanged || heads.is_empty() {
            continue;
        }
        match checkpoint::create(&store, &key, &signer).await {
            Ok(_) => last = Some(heads),
            Err(e) => tracing::warn!(error = %e, "cannot write an audit checkpoint"),
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

/// Records read per query while verifying: bounded memory and no query that
/// runs for long on a large trail.
const VERIFY_PAGE: i64 = 5_000;

/// [`verify`] limited to a time range. A range starting after a chain's first
/// record trusts the `prev_hash` of the range's first record.
///
/// Chain heads are read first and each chain is checked up to the head read:
/// records committed while verification runs lie beyond those heads and are
/// left for the next run, so a trail being written verifies without false
/// alarms (a head and its records are committed in one transaction).
pub async fn verify_range(store: &AuditStore, range: VerifyRange) -> Result<VerifyReport> {
    let chains = store.chains().await?;
    let mut report = VerifyReport {
        chains: chains.len(),
        records: 0,
        failure: None,
    };
    for chain in &chains {
        let mut check = ChainCheck::new(chain, range);
        let mut after = chain.archived_seq;
        loop {
            let page = store
                .chain_records(&chain.chain_id, after, chain.head_seq, VERIFY_PAGE)
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            for record in page.iter().filter(|r| {
                range.since.is_none_or(|s| r.record.recorded_at >= s)
                    && range.until.is_none_or(|u| r.record.recorded_at < u)
            }) {
                report.records += 1;
                if let Some(failure) = check.record(record) {
                    report.failure = Some(failure);
                    return Ok(report);
                }
            }
            if i64::try_from(page.len()).unwrap_or(i64::MAX) < VERIFY_PAGE {
                break;
            }
        }
        if let Some(failure) = check.finish() {
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
    /// Seq of the last record archived out of the database (-1: none).
    pub archived_seq: i64,
    /// Hash of the last record archived (the genesis hash: none).
    pub archived_hash: String,
}

/// Checks one chain's records as they are read, in seq order.
struct ChainCheck<'a> {
    chain: &'a ChainHead,
    range: VerifyRange,
    /// Seq and hash the next record must follow; `None` before the first.
    expected: Option<(i64, String)>,
}

impl<'a> ChainCheck<'a> {
    fn new(chain: &'a ChainHead, range: VerifyRange) -> ChainCheck<'a> {
        ChainCheck {
            chain,
            range,
            expected: None,
        }
    }

    fn record(&mut self, r: &StoredRecord) -> Option<String> {
        let (expected_seq, prev) = match self.expected.take() {
            Some(expected) => expected,
            // A range starting later trusts its first record's link.
            None if self.range.since.is_some() => (r.seq, r.prev_hash.clone()),
            None => (
                self.chain.archived_seq + 1,
                self.chain.archived_hash.clone(),
            ),
        };
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
        self.expected = Some((r.seq + 1, hash));
        None
    }

    /// After the last record: an open-ended check must end exactly at the head.
    fn finish(self) -> Option<String> {
        let ranged = self.range.since.is_some() || self.range.until.is_some();
        if self.range.until.is_some() || (ranged && self.expected.is_none()) {
            return None;
        }
        let (next, prev) = self.expected.unwrap_or_else(|| {
            (
                self.chain.archived_seq + 1,
                self.chain.archived_hash.clone(),
            )
        });
        if next - 1 != self.chain.head_seq || prev != self.chain.head_hash {
            return Some(format!(
                "chain {} ({}): head says seq {} but the last record is seq {}; records were deleted from its end",
                self.chain.chain_id,
                self.chain.host,
                self.chain.head_seq,
                next - 1
            ));
        }
        None
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Audit(e.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::AuditRecord;

    /// A record whose every string field (and reason) is `value`.
    pub(crate) fn record_with_every_field(value: &str) -> AuditRecord {
        let v = || value.to_string();
        AuditRecord {
            call_id: v(),
            recorded_at: AuditRecord::now(),
            principal: v(),
            tenant: v(),
            session: Some(v()),
            tool: v(),
            plugin: Some(v()),
            plugin_sha256: Some(v()),
            upstream: Some(v()),
            policy_hash: v(),
            decision: v(),
            reasons: vec![v()],
            args_digest: v(),
            outcome: v(),
            output_digest: Some(v()),
            error: Some(v()),
            duration_us: 1,
            intent: false,
            shadow: Some(v()),
            policy_input: Some(v()),
            refusals: vec![v()],
            decisions: vec![super::StageDecision {
                stage: v(),
                decision: v(),
                reasons: vec![v()],
            }],
            verdicts: vec![super::VerdictRecord {
                stage: v(),
                verifier: v(),
                sha256: v(),
                verdict: v(),
                advisory: false,
                findings: vec![super::FindingRecord {
                    kind: v(),
                    label: v(),
                    severity: v(),
                    score: 0.5,
                    pointer: Some(v()),
                    start: Some(0),
                    end: Some(1),
                    digest: Some(v()),
                    message: v(),
                }],
                error: Some(v()),
            }],
            completion: Some(v()),
            sealed_text: Some(v()),
            spend: Some(v()),
        }
    }
}
