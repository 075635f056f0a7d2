//! Retention: old stretches of the trail exported to compressed JSON Lines,
//! then dropped from the database (`warden audit archive`).
//!
//! An archive is one segment ([`Segment`]: a month's partition on
//! PostgreSQL) as gzip-compressed JSON Lines: a header naming, for every
//! chain in it, the hash its first record follows and the hash of its last,
//! then the records in chain order. It verifies on its own
//! ([`verify_archives`]): every hash is recomputed and every link followed
//! from the header's anchors, and consecutive archives must continue each
//! other's chains. Once a segment is archived its chains' last archived seq
//! and hash move to `audit_chains`, and `warden audit verify` starts there.
//!
//! A segment is archived only when, for every chain in it, it holds the next
//! records of that chain without a gap (a chain's older records are archived
//! first; a host whose clock went back may have put later seqs in an earlier
//! month, and then the segment is refused). Its file is written under a
//! temporary name, flushed, renamed, and read back and verified before the
//! segment is dropped; the drop checks under an exclusive lock that no record
//! arrived meanwhile.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::partitions::{Month, Segment};
use super::{AuditStore, GENESIS_HASH, StoredRecord, chain_hash, on_pool};
use crate::error::{Error, Result};

/// The header's `format`.
const FORMAT: &str = "warden-audit-archive";

/// Records read from the database per query while archiving.
const PAGE: i64 = 5_000;

/// Longest line an archive may hold (a record is far smaller).
const MAX_LINE: u64 = 64 << 20;

/// The first line of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Always `warden-audit-archive`.
    pub format: String,
    /// Format version (1).
    pub v: u8,
    /// The segment archived (partition name).
    pub segment: String,
    /// First instant the segment held (none: everything before `to`).
    pub from: Option<DateTime<Utc>>,
    /// First instant it no longer held.
    pub to: DateTime<Utc>,
    /// When the archive was written.
    pub archived_at: DateTime<Utc>,
    /// Records in the archive.
    pub records: i64,
    /// Each chain's span, in the order its records follow.
    pub chains: Vec<ArchivedChain>,
}

/// One chain's records in an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedChain {
    /// Chain id.
    pub chain_id: String,
    /// Host label of the chain.
    pub host: String,
    /// Seq of its first record here.
    pub first_seq: i64,
    /// Seq of its last record here.
    pub last_seq: i64,
    /// The hash the first record follows (the genesis hash, or the last
    /// hash of the chain's previous archive).
    pub prev_hash: String,
    /// Hash of its last record here.
    pub head_hash: String,
}

/// A segment archived (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct Archived {
    /// The segment.
    pub segment: String,
    /// The archive file (none in a dry run).
    pub file: Option<PathBuf>,
    /// SHA-256 of the file.
    pub sha256: Option<String>,
    /// Records moved out of the database.
    pub records: i64,
    /// Chains with records in it.
    pub chains: usize,
}

/// Archives every segment that ends on or before `before` (oldest first)
/// into `dir` as `SEGMENT.jsonl.gz`, then drops it; with `dry_run`, only says
/// what would be archived. Stops at the first segment that cannot be
/// archived, naming why; segments archived before it stay archived.
pub async fn archive(
    store: &AuditStore,
    before: DateTime<Utc>,
    dir: &Path,
    dry_run: bool,
) -> Result<Vec<Archived>> {
    let current = Month::of(Utc::now()).start();
    if before > current {
        return Err(Error::Audit(format!(
            "cannot archive records from {} on: the current month ({}) is still being written",
            before.format("%Y-%m-%d"),
            current.format("%Y-%m")
        )));
    }
    let mut done = Vec::new();
    // In a dry run, where each chain's archive would end so far.
    let mut marks = Marks::new();
    for segment in segments(store, before).await? {
        let header = plan(store, &segment, &marks).await?;
        // A month of SQLite's one table without records is nothing to
        // archive; an empty partition is archived to be dropped.
        if header.records == 0 && matches!(store, AuditStore::Sqlite(_)) {
            continue;
        }
        if dry_run {
            for chain in &header.chains {
                marks.insert(
                    chain.chain_id.clone(),
                    (chain.last_seq, chain.head_hash.clone()),
                );
            }
            done.push(Archived {
                segment: segment.name,
                file: None,
                sha256: None,
                records: header.records,
                chains: header.chains.len(),
            });
            continue;
        }
        let file = dir.join(format!("{}.jsonl.gz", segment.name));
        let partial = file.with_extension("gz.partial");
        if let Err(e) = write(store, &header, &partial, &file).await {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        let check = verify_archives(std::slice::from_ref(&file))?;
        if let Some(failure) = check.failure {
            return Err(Error::Audit(format!(
                "the archive just written does not verify ({failure}); {} kept in the database",
                segment.name
            )));
        }
        let sha256 = check.sha256.into_iter().next().unwrap_or_default();
        if let Err(e) = drop_segment(store, &segment, &header, &file, &sha256).await {
            // The records stay in the database; a later run writes the file again.
            let _ = std::fs::remove_file(&file);
            return Err(e);
        }
        done.push(Archived {
            segment: segment.name,
            file: Some(file),
            sha256: Some(sha256),
            records: header.records,
            chains: header.chains.len(),
        });
    }
    Ok(done)
}

/// The segments ending on or before `before`, oldest first: partitions on
/// PostgreSQL; on SQLite the months from the oldest record on.
async fn segments(store: &AuditStore, before: DateTime<Utc>) -> Result<Vec<Segment>> {
    match store {
        AuditStore::Postgres(pool) => Ok(super::partitions::partitions(pool)
            .await?
            .into_iter()
            .filter(|s| s.to <= before)
            .collect()),
        AuditStore::Sqlite(pool) => {
            let (oldest,): (Option<DateTime<Utc>>,) =
                sqlx::query_as("SELECT MIN(recorded_at) FROM audit_records")
                    .fetch_one(pool)
                    .await?;
            let mut segments = Vec::new();
            let mut month = oldest.map(Month::of);
            while let Some(m) = month.filter(|m| m.next().start() <= before) {
                segments.push(Segment::month(m));
                month = Some(m.next());
            }
            Ok(segments)
        }
    }
}

/// The records of `segment` with `$from`/`$to` bound as parameters 1 and 2
/// (`$1` null: no lower bound).
const IN_SEGMENT: &str = "($1 IS NULL OR recorded_at >= $1) AND recorded_at < $2";

/// Each chain's last archived seq and hash, where they differ from the
/// database's marks.
type Marks = std::collections::HashMap<String, (i64, String)>;

/// Reads what `segment` holds per chain and checks that archiving it keeps
/// every chain whole: each chain's records in it continue where its archive
/// ends (its mark in the database, or in `marks`), without a gap.
async fn plan(store: &AuditStore, segment: &Segment, marks: &Marks) -> Result<ArchiveHeader> {
    let sql = format!(
        "SELECT r.chain_id, c.host, MIN(r.seq), MAX(r.seq), COUNT(*), c.archived_seq, c.archived_hash \
         FROM audit_records r JOIN audit_chains c ON c.chain_id = r.chain_id \
         WHERE {IN_SEGMENT} GROUP BY r.chain_id, c.host, c.archived_seq, c.archived_hash \
         ORDER BY r.chain_id"
    );
    let rows: Vec<(String, String, i64, i64, i64, i64, String)> = on_pool!(store, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(segment.from)
            .bind(segment.to)
            .fetch_all(pool)
            .await?
    });
    let mut header = ArchiveHeader {
        format: FORMAT.to_string(),
        v: 1,
        segment: segment.name.clone(),
        from: segment.from,
        to: segment.to,
        archived_at: super::AuditRecord::now(),
        records: 0,
        chains: Vec::with_capacity(rows.len()),
    };
    for (chain_id, host, first, last, count, archived_seq, archived_hash) in rows {
        let (archived_seq, archived_hash) = marks
            .get(&chain_id)
            .cloned()
            .unwrap_or((archived_seq, archived_hash));
        let refuse = |why: String| {
            Err(Error::Audit(format!(
                "cannot archive {}: chain {chain_id} ({host}) {why}",
                segment.name
            )))
        };
        if first != archived_seq + 1 {
            return refuse(format!(
                "has seq {first}..={last} here but its records up to seq {} are still in the \
                 database outside this segment (its host's clock went back?); archive up to a \
                 later date so they go together",
                first - 1
            ));
        }
        if count != last - first + 1 {
            return refuse(format!(
                "has {count} records here for seq {first}..={last}: the rest lie in a later \
                 segment (its host's clock went back?) or are missing; archive up to a later \
                 date, or run `warden audit verify`"
            ));
        }
        let head_hash = store
            .chain_record(&chain_id, last)
            .await?
            .map(|r| r.hash)
            .unwrap_or_default();
        header.records += count;
        header.chains.push(ArchivedChain {
            chain_id,
            host,
            first_seq: first,
            last_seq: last,
            prev_hash: archived_hash,
            head_hash,
        });
    }
    Ok(header)
}

/// Writes the archive of `header`'s records to `partial`, flushes it and
/// renames it to `file`, checking every link and hash on the way.
async fn write(
    store: &AuditStore,
    header: &ArchiveHeader,
    partial: &Path,
    file: &Path,
) -> Result<()> {
    if file.exists() {
        return Err(Error::Audit(format!(
            "{} exists already: move it away (an archive is never overwritten)",
            file.display()
        )));
    }
    let io = |e: std::io::Error| Error::Io {
        path: partial.to_path_buf(),
        source: e,
    };
    let out = std::fs::File::create(partial).map_err(io)?;
    let mut gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::default());
    let line = serde_json::to_string(&header).map_err(|e| Error::Audit(e.to_string()))?;
    writeln!(gz, "{line}").map_err(io)?;
    for chain in &header.chains {
        let mut expected = (chain.first_seq, chain.prev_hash.clone());
        let mut after = chain.first_seq - 1;
        while after < chain.last_seq {
            let page = store
                .chain_records(&chain.chain_id, after, chain.last_seq, PAGE)
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            for record in &page {
                if let Some(failure) = check_link(record, &expected) {
                    return Err(Error::Audit(format!(
                        "cannot archive {}: {failure}; run `warden audit verify`",
                        header.segment
                    )));
                }
                expected = (record.seq + 1, record.hash.clone());
                let line =
                    serde_json::to_string(record).map_err(|e| Error::Audit(e.to_string()))?;
                writeln!(gz, "{line}").map_err(io)?;
            }
        }
        if expected != (chain.last_seq + 1, chain.head_hash.clone()) {
            return Err(Error::Audit(format!(
                "chain {} changed while it was being archived",
                chain.chain_id
            )));
        }
    }
    let out = gz.finish().map_err(io)?;
    let out = out.into_inner().map_err(|e| io(e.into_error()))?;
    out.sync_all().map_err(io)?;
    drop(out);
    std::fs::rename(partial, file).map_err(io)?;
    if let Some(dir) = file.parent() {
        // The rename itself is durable once the directory is flushed.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Why `record` does not follow `expected` (seq and previous hash), or does
/// not match its own hash.
fn check_link(record: &StoredRecord, expected: &(i64, String)) -> Option<String> {
    let name = format!(
        "record chain {} seq {} (call {})",
        record.chain_id, record.seq, record.record.call_id
    );
    if record.seq != expected.0 {
        return Some(format!("{name}: expected seq {}", expected.0));
    }
    if record.prev_hash != expected.1 {
        return Some(format!(
            "{name}: prev_hash does not match the hash of the record before it"
        ));
    }
    if chain_hash(
        &record.chain_id,
        record.seq,
        &record.prev_hash,
        &record.record,
    ) != record.hash
    {
        return Some(format!("{name}: contents do not match its hash (edited)"));
    }
    None
}

/// Drops the archived segment and moves its chains' archive marks, in one
/// transaction, after checking under an exclusive lock that it still holds
/// exactly the records archived.
///
/// On PostgreSQL the partition is dropped before any chain row is touched:
/// dropping locks the audit table exclusively, and a writer waiting for that
/// lock may hold `audit_chains`; taking a chain row first could deadlock
/// with it. Locks not granted within half a second give up (nothing
/// changes), so writers queued behind them never wait longer.
async fn drop_segment(
    store: &AuditStore,
    segment: &Segment,
    header: &ArchiveHeader,
    file: &Path,
    sha256: &str,
) -> Result<()> {
    let chains = serde_json::to_string(&header.chains).map_err(|e| Error::Audit(e.to_string()))?;
    let changed = || {
        Error::Audit(format!(
            "records reached {} while it was archived; it stays in the database (run again)",
            segment.name
        ))
    };
    let (count_sql, remove_sql) = match store {
        AuditStore::Postgres(_) => (
            format!("SELECT COUNT(*) FROM {}", segment.name),
            format!("DROP TABLE {}", segment.name),
        ),
        AuditStore::Sqlite(_) => (
            format!("SELECT COUNT(*) FROM audit_records WHERE {IN_SEGMENT}"),
            format!("DELETE FROM audit_records WHERE {IN_SEGMENT}"),
        ),
    };
    on_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        if let AuditStore::Postgres(_) = store {
            for statement in [
                "SET LOCAL lock_timeout = '500ms'".to_string(),
                format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", segment.name),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
            }
        }
        let count = sqlx::query_as(sqlx::AssertSqlSafe(count_sql));
        let remove = sqlx::query(sqlx::AssertSqlSafe(remove_sql));
        let (count, remove) = match store {
            AuditStore::Postgres(_) => (count, remove),
            AuditStore::Sqlite(_) => (
                count.bind(segment.from).bind(segment.to),
                remove.bind(segment.from).bind(segment.to),
            ),
        };
        let (count,): (i64,) = count.fetch_one(&mut *tx).await?;
        if count != header.records {
            return Err(changed());
        }
        remove.execute(&mut *tx).await?;
        for chain in &header.chains {
            let moved = sqlx::query(
                "UPDATE audit_chains SET archived_seq = $1, archived_hash = $2 \
                 WHERE chain_id = $3 AND archived_seq = $4",
            )
            .bind(chain.last_seq)
            .bind(&chain.head_hash)
            .bind(&chain.chain_id)
            .bind(chain.first_seq - 1)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                return Err(changed());
            }
        }
        sqlx::query(
            "INSERT INTO audit_archives (segment, archived_at, file, sha256, records, chains) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&segment.name)
        .bind(header.archived_at)
        .bind(file.display().to_string())
        .bind(sha256)
        .bind(header.records)
        .bind(&chains)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// What [`verify_archives`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveReport {
    /// Archives read.
    pub archives: usize,
    /// Records checked.
    pub records: usize,
    /// SHA-256 of each file, in order.
    pub sha256: Vec<String>,
    /// The first problem, naming the file and record; `None` when every
    /// archive is intact and each continues the ones before it.
    pub failure: Option<String>,
}

/// Verifies archive files on their own, in the order given: every record's
/// hash and link from its header's anchors to its header's heads, and for a
/// chain in several archives, that each continues where the one before ended.
pub fn verify_archives(files: &[PathBuf]) -> Result<ArchiveReport> {
    let mut report = ArchiveReport::default();
    // Each chain's (next seq, last hash) after the archives read so far.
    let mut ends = Marks::new();
    for file in files {
        report.archives += 1;
        let (sha256, failure) = verify_one(file, &mut ends, &mut report.records)?;
        report.sha256.push(sha256);
        if let Some(failure) = failure {
            report.failure = Some(format!("{}: {failure}", file.display()));
            break;
        }
    }
    Ok(report)
}

/// Reads and hashes what it reads.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Verifies one archive, continuing `ends`; returns the file's SHA-256 and
/// the first problem.
fn verify_one(
    file: &Path,
    ends: &mut Marks,
    records: &mut usize,
) -> Result<(String, Option<String>)> {
    let io = |e: std::io::Error| Error::Io {
        path: file.to_path_buf(),
        source: e,
    };
    let mut hashing = Hashing {
        inner: std::fs::File::open(file).map_err(io)?,
        hasher: Sha256::new(),
    };
    let failure = {
        let mut lines = std::io::BufReader::new(flate2::read::GzDecoder::new(&mut hashing));
        check_archive(&mut lines, ends, records)
            .unwrap_or_else(|e| Some(format!("unreadable: {e}")))
    };
    // Hash what remains unread too (nothing, for an intact file).
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io)?;
    Ok((hex::encode(hashing.hasher.finalize()), failure))
}

/// Reads the next line, at most [`MAX_LINE`] long; `None` at the end.
fn next_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    let n = (&mut *reader).take(MAX_LINE).read_line(&mut line)?;
    Ok((n > 0).then_some(line))
}

/// Checks an archive's lines; `Ok(Some(_))` names the first problem.
fn check_archive(
    lines: &mut impl BufRead,
    ends: &mut Marks,
    records: &mut usize,
) -> std::io::Result<Option<String>> {
    let Some(first) = next_line(lines)? else {
        return Ok(Some("empty: no header".into()));
    };
    let header: ArchiveHeader = match serde_json::from_str(&first) {
        Ok(h) if matches!(&h, ArchiveHeader { format, v: 1, .. } if format == FORMAT) => h,
        Ok(_) => return Ok(Some(format!("not a {FORMAT} v1 header"))),
        Err(e) => return Ok(Some(format!("header: {e}"))),
    };
    let mut count = 0i64;
    for chain in &header.chains {
        if let Some((next, hash)) = ends.get(&chain.chain_id)
            && (*next != chain.first_seq || *hash != chain.prev_hash)
        {
            return Ok(Some(format!(
                "chain {} starts at seq {} but the archive before ended at seq {}: \
                 archives are missing or out of order",
                chain.chain_id,
                chain.first_seq,
                next - 1
            )));
        }
        if !ends.contains_key(&chain.chain_id)
            && chain.first_seq == 0
            && chain.prev_hash != GENESIS_HASH
        {
            return Ok(Some(format!(
                "chain {}: its first record does not follow the genesis hash",
                chain.chain_id
            )));
        }
        let mut expected = (chain.first_seq, chain.prev_hash.clone());
        while expected.0 <= chain.last_seq {
            let Some(line) = next_line(lines)? else {
                return Ok(Some(format!(
                    "chain {} ends at seq {} but its header says seq {}: records were cut off",
                    chain.chain_id,
                    expected.0 - 1,
                    chain.last_seq
                )));
            };
            let record: StoredRecord = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => return Ok(Some(format!("record {}: {e}", count + 1))),
            };
            if record.chain_id != chain.chain_id {
                return Ok(Some(format!(
                    "record {}: chain {} where the header expects chain {} seq {}",
                    count + 1,
                    record.chain_id,
                    chain.chain_id,
                    expected.0
                )));
            }
            if let Some(failure) = check_link(&record, &expected) {
                return Ok(Some(failure));
            }
            let at = record.record.recorded_at;
            if header.from.is_some_and(|from| at < from) || at >= header.to {
                return Ok(Some(format!(
                    "record chain {} seq {}: recorded at {at}, outside the segment",
                    record.chain_id, record.seq
                )));
            }
            expected = (record.seq + 1, record.hash);
            count += 1;
            *records += 1;
        }
        if expected.1 != chain.head_hash {
            return Ok(Some(format!(
                "chain {}: its last record's hash is not the header's head hash",
                chain.chain_id
            )));
        }
        ends.insert(chain.chain_id.clone(), expected);
    }
    if next_line(lines)?.is_some() {
        return Ok(Some("records after the last chain the header names".into()));
    }
    if count != header.records {
        return Ok(Some(format!(
            "{count} records where the header says {}",
            header.records
        )));
    }
    Ok(None)
}
