//! The audit store: PostgreSQL in production, SQLite for the embedded default.
//! Both run the same SQL; [`on_pool!`] expands each query once per backend.

use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json;

use super::{ChainHead, GENESIS_HASH, StoredRecord};
use crate::error::{Error, Result};

/// A connection pool to one of the supported databases.
#[derive(Debug, Clone)]
pub enum AuditStore {
    /// Production store.
    Postgres(PgPool),
    /// Embedded store for local use.
    Sqlite(SqlitePool),
}

/// Runs the same code against whichever pool the store holds (both run the
/// same SQL, `$1`-style parameters included).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::audit::AuditStore::Postgres($pool) => $body,
            $crate::audit::AuditStore::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A JSON list column that older rows leave NULL: decodes to an empty list.
#[derive(Debug)]
pub(super) struct NullableJson<T>(Option<Json<Vec<T>>>);

impl<T> From<NullableJson<T>> for Vec<T> {
    fn from(value: NullableJson<T>) -> Vec<T> {
        value.0.map(|json| json.0).unwrap_or_default()
    }
}

impl<DB: sqlx::Database, T> sqlx::Type<DB> for NullableJson<T>
where
    Json<Vec<T>>: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <Json<Vec<T>> as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <Json<Vec<T>> as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database, T> sqlx::Decode<'r, DB> for NullableJson<T>
where
    Option<Json<Vec<T>>>: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(NullableJson(Option::<Json<Vec<T>>>::decode(value)?))
    }
}

/// The one list of an audit row's columns: each inserted column and the
/// value bound to it, from the stored record `$row` and its record `$r`,
/// in the order of the chain's columns and then [`AuditRecord`](super::AuditRecord)'s fields.
/// Reads decode rows into [`StoredRecord`] by these names. An audit field is
/// a field of `AuditRecord`, a line here and a migration.
macro_rules! inserted_columns {
    ($then:ident, $row:ident, $r:ident $(, $with:ident)?) => {
        $then! {
            [$($with)?]
            chain_id: &$row.chain_id,
            seq: $row.seq,
            prev_hash: &$row.prev_hash,
            hash: &$row.hash,
            call_id: &$r.call_id,
            recorded_at: $r.recorded_at,
            principal: &$r.principal,
            tenant: &$r.tenant,
            session: &$r.session,
            tool: &$r.tool,
            plugin: &$r.plugin,
            plugin_sha256: &$r.plugin_sha256,
            upstream: &$r.upstream,
            policy_hash: &$r.policy_hash,
            decision: &$r.decision,
            reasons: Json(&$r.reasons),
            // NULL, not `[]`, for the lists older rows do not have.
            decisions: (!$r.decisions.is_empty()).then_some(Json(&$r.decisions)),
            args_digest: &$r.args_digest,
            outcome: &$r.outcome,
            output_digest: &$r.output_digest,
            error: &$r.error,
            duration_us: $r.duration_us,
            intent: $r.intent,
            shadow: &$r.shadow,
            policy_input: &$r.policy_input,
            refusals: (!$r.refusals.is_empty()).then_some(Json(&$r.refusals)),
            verdicts: (!$r.verdicts.is_empty()).then_some(Json(&$r.verdicts)),
            completion: &$r.completion,
            sealed_text: &$r.sealed_text,
            spend: &$r.spend,
        }
    };
}

/// The names of [`inserted_columns!`], as a list.
macro_rules! column_names {
    ([] $($column:ident: $value:expr),* $(,)?) => {
        &[$(stringify!($column)),*]
    };
}

/// Binds one row's values with the query's separated list `$b`, in the
/// order of their names.
macro_rules! bind_values {
    ([$b:ident] $($column:ident: $value:expr),* $(,)?) => {
        $( $b.push_bind($value); )*
    };
}

/// The columns an insert writes (all but the store-assigned `id`).
const INSERTED_COLUMNS: &[&str] = inserted_columns!(column_names, row, r);

/// Pushes `VALUES (…), (…)` for `$rows` onto the query builder `$query`
/// (after its column list), skipping rows already stored when `$idempotent`.
macro_rules! push_rows {
    ($query:ident, $rows:expr, $idempotent:expr) => {
        $query.push_values($rows, |mut b, row| {
            let r = &row.record;
            inserted_columns!(bind_values, row, r, b);
        });
        if $idempotent {
            // Any unique key: on PostgreSQL `(chain_id, seq)` is unique per
            // `recorded_at` (migration 0021), on SQLite by itself.
            $query.push(" ON CONFLICT DO NOTHING");
        }
    };
}

/// Every column of a stored record, as a select list.
fn columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("id, {}", INSERTED_COLUMNS.join(", ")));
    &COLUMNS
}

/// How durable a commit is before the calls whose records it holds are
/// answered (`audit.durability`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// The commit is flushed to stable storage (PostgreSQL's default
    /// `synchronous_commit = on`, SQLite `synchronous = FULL`): an answered
    /// call's record survives a crash of Warden, of the database server, of
    /// the kernel and a power cut.
    #[default]
    Flush,
    /// The database has accepted the commit, its log flush still pending
    /// (PostgreSQL `synchronous_commit = off`, SQLite `synchronous = NORMAL`
    /// in WAL mode): an answered call's record survives a crash of Warden;
    /// the last fraction of a second of records may be lost if the database
    /// server, the kernel or the power fails.
    Commit,
}

/// A pooled PostgreSQL connection idle longer than this is checked before
/// it is used again.
const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl AuditStore {
    /// Opens a pool for `postgres://…` or `sqlite://…` (the SQLite file is
    /// created if missing, in WAL mode), its commits as durable as
    /// `durability` says. PostgreSQL connections are made on first use, so a
    /// host with a spool can start while the server is down; waiting for a
    /// connection is bounded by `acquire_timeout`. Statement logging is off:
    /// the writer reports slow commits itself, and `verify` reads in pages.
    pub async fn connect(
        url: &str,
        acquire_timeout: std::time::Duration,
        durability: Durability,
    ) -> Result<AuditStore> {
        let fail = |e: sqlx::Error| Error::Audit(format!("cannot open {}: {e}", redact(url)));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url)
                .map_err(fail)?
                .disable_statement_logging();
            if durability == Durability::Commit {
                options = options.options([("synchronous_commit", "off")]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(acquire_timeout)
                // sqlx pings every connection it hands out: a round trip
                // before each statement. Only one idle for a while is
                // pinged (as HikariCP does); one in steady use that broke
                // fails its statement, which the caller treats as the
                // store being unavailable.
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PING_IF_IDLE_FOR {
                            sqlx::Connection::ping(connection).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_lazy_with(options);
            Ok(AuditStore::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(fail)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(match durability {
                    Durability::Flush => SqliteSynchronous::Full,
                    Durability::Commit => SqliteSynchronous::Normal,
                })
                .busy_timeout(std::time::Duration::from_secs(5))
                .disable_statement_logging();
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(fail)?;
            Ok(AuditStore::Sqlite(pool))
        }
    }

    /// Whether the store would take records now: on PostgreSQL, whether the
    /// lock an insert needs is free (`NOWAIT`: a table locked by someone else
    /// fails the probe at once instead of stalling it). Only the audit table
    /// itself: a month's partition being made or dropped is locked for a
    /// moment without stopping inserts into the current month.
    pub(super) async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            AuditStore::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("LOCK TABLE ONLY audit_records IN ROW EXCLUSIVE MODE NOWAIT")
                    .execute(&mut *tx)
                    .await?;
                tx.rollback().await
            }
            AuditStore::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        // The writer, the ledger and the key store each migrate before their
        // first use; SQLite has no migration lock of its own, so within a
        // process they take turns.
        static MIGRATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _turn = MIGRATING.lock().await;
        let result = match self {
            AuditStore::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
            AuditStore::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
        };
        result.map_err(|e| Error::Audit(format!("migration failed: {e}")))
    }

    /// Registers a chain; registering it again is a no-op.
    pub(super) async fn begin_chain(
        &self,
        chain_id: &str,
        host: &str,
        started_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO audit_chains (chain_id, host, started_at, head_seq, head_hash) \
                 VALUES ($1, $2, $3, -1, $4) ON CONFLICT (chain_id) DO NOTHING",
            )
            .bind(chain_id)
            .bind(host)
            .bind(started_at)
            .bind(GENESIS_HASH)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Inserts `rows` (consecutive records of `chain_id`) and moves the chain
    /// head, atomically. With `idempotent`, rows already present are skipped
    /// and the head only moves forward (draining a spool).
    pub(super) async fn append(
        &self,
        chain_id: &str,
        rows: &[StoredRecord],
        idempotent: bool,
    ) -> Result<(), sqlx::Error> {
        let Some(last) = rows.last() else {
            return Ok(());
        };
        match self {
            // One statement, so one round trip: the insert in a
            // data-modifying `WITH`, which runs to completion whether or not
            // the head's `UPDATE` reads it; one statement is one transaction.
            AuditStore::Postgres(pool) => {
                let mut statement = sqlx::QueryBuilder::new(format!(
                    "WITH inserted AS (INSERT INTO audit_records ({}) ",
                    INSERTED_COLUMNS.join(", ")
                ));
                push_rows!(statement, rows, idempotent);
                statement.push(") UPDATE audit_chains SET head_seq = ");
                statement.push_bind(last.seq);
                statement.push(", head_hash = ");
                statement.push_bind(&last.hash);
                statement.push(" WHERE chain_id = ");
                statement.push_bind(chain_id);
                statement.push(" AND head_seq < ");
                statement.push_bind(last.seq);
                statement.build().execute(pool).await?;
                Ok(())
            }
            // One statement too: a trigger moves the head (migration 0014),
            // so the insert is one hand-over to the driver's worker thread.
            AuditStore::Sqlite(pool) => {
                let mut insert = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO audit_records ({}) ",
                    INSERTED_COLUMNS.join(", ")
                ));
                push_rows!(insert, rows, idempotent);
                insert.build().execute(pool).await?;
                Ok(())
            }
        }
    }

    pub(super) async fn chain_head(
        &self,
        chain_id: &str,
    ) -> Result<Option<(i64, String)>, sqlx::Error> {
        let head: Option<(i64, String)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT head_seq, head_hash FROM audit_chains WHERE chain_id = $1")
                .bind(chain_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(head)
    }

    /// Every registered chain with its head.
    pub async fn chains(&self) -> Result<Vec<ChainHead>> {
        let rows: Vec<(String, String, i64, String, i64, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT chain_id, host, head_seq, head_hash, archived_seq, archived_hash \
                 FROM audit_chains ORDER BY started_at, chain_id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(chain_id, host, head_seq, head_hash, archived_seq, archived_hash)| ChainHead {
                    chain_id,
                    host,
                    head_seq,
                    head_hash,
                    archived_seq,
                    archived_hash,
                },
            )
            .collect())
    }

    /// Up to `limit` records of one chain with `after < seq <= up_to`, in chain order.
    pub async fn chain_records(
        &self,
        chain_id: &str,
        after: i64,
        up_to: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>> {
        let sql = format!(
            "SELECT {} FROM audit_records WHERE chain_id = $1 AND seq > $2 AND seq <= $3 \
             ORDER BY seq, id LIMIT $4",
            columns()
        );
        let rows: Vec<StoredRecord> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(chain_id)
                .bind(after)
                .bind(up_to)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The record at `seq` in `chain_id`.
    pub async fn chain_record(&self, chain_id: &str, seq: i64) -> Result<Option<StoredRecord>> {
        let sql = format!(
            "SELECT {} FROM audit_records WHERE chain_id = $1 AND seq = $2",
            columns()
        );
        let row: Option<StoredRecord> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(chain_id)
                .bind(seq)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Stores a signed checkpoint.
    pub(super) async fn insert_checkpoint(
        &self,
        checkpoint: &super::checkpoint::Checkpoint,
    ) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO audit_checkpoints (created_at, body, signature, public_key) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(chrono::Utc::now())
            .bind(&checkpoint.body)
            .bind(&checkpoint.signature)
            .bind(&checkpoint.public_key)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The most recent checkpoint, if any was written.
    pub async fn latest_checkpoint(&self) -> Result<Option<super::checkpoint::Checkpoint>> {
        let row: Option<(String, String, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT body, signature, public_key FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(body, signature, public_key)| super::checkpoint::Checkpoint {
                body,
                signature,
                public_key,
            },
        ))
    }

    /// The most recent `limit` records, oldest first.
    pub async fn tail(&self, limit: i64) -> Result<Vec<StoredRecord>> {
        let sql = format!(
            "SELECT {} FROM audit_records ORDER BY id DESC LIMIT $1",
            columns()
        );
        let rows: Vec<StoredRecord> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await?
        });
        Ok(rows.into_iter().rev().collect())
    }

    /// The final record of this call (its outcome, or its intent if the call never finished).
    pub async fn by_call_id(&self, call_id: &str) -> Result<Option<StoredRecord>> {
        // A side-effecting call has an intent record and an outcome record: prefer the outcome.
        let sql = format!(
            "SELECT {} FROM audit_records WHERE call_id = $1 ORDER BY intent, id DESC LIMIT 1",
            columns()
        );
        let row: Option<StoredRecord> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(call_id).fetch_optional(pool).await?
        });
        Ok(row)
    }

    pub(super) async fn first_orphan_record(&self) -> Result<Option<(i64, String)>> {
        let row: Option<(i64, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, chain_id FROM audit_records r WHERE NOT EXISTS \
                 (SELECT 1 FROM audit_chains c WHERE c.chain_id = r.chain_id) ORDER BY id LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }
}

/// Which records a query returns; every field narrows, none set means all.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Recorded at or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded before.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Principal id.
    pub principal: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Qualified tool name.
    pub tool: Option<String>,
    /// `allow`, `deny` or `none`.
    pub decision: Option<String>,
    /// `ok` or an error code.
    pub outcome: Option<String>,
    /// Session or trace id.
    pub session: Option<String>,
    /// Only intent records whose call has no outcome record: side-effecting
    /// calls interrupted by a crash.
    #[serde(default)]
    pub incomplete: bool,
    /// At most this many records (oldest first).
    pub limit: Option<i64>,
}

impl AuditStore {
    /// Records matching `filter`, in insertion order.
    pub async fn query(&self, filter: &AuditFilter) -> Result<Vec<StoredRecord>> {
        let rows: Vec<StoredRecord> = on_pool!(self, pool => {
            let mut q = sqlx::QueryBuilder::new(format!("SELECT {} FROM audit_records WHERE 1 = 1", columns()));
            if let Some(since) = filter.since {
                q.push(" AND recorded_at >= ").push_bind(since);
            }
            if let Some(until) = filter.until {
                q.push(" AND recorded_at < ").push_bind(until);
            }
            for (column, value) in [
                ("principal", &filter.principal),
                ("tenant", &filter.tenant),
                ("tool", &filter.tool),
                ("decision", &filter.decision),
                ("outcome", &filter.outcome),
                ("session", &filter.session),
            ] {
                if let Some(value) = value {
                    q.push(format!(" AND {column} = ")).push_bind(value.clone());
                }
            }
            if filter.incomplete {
                q.push(
                    " AND intent AND NOT EXISTS (SELECT 1 FROM audit_records o \
                     WHERE o.call_id = audit_records.call_id AND NOT o.intent)",
                );
            }
            q.push(" ORDER BY id");
            if let Some(limit) = filter.limit {
                q.push(" LIMIT ").push_bind(limit);
            }
            q.build_query_as::<StoredRecord>().fetch_all(pool).await?
        });
        Ok(rows)
    }
}

/// A URL with any password replaced, for error messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{INSERTED_COLUMNS, columns};

    /// The column list names exactly the chain's columns and the record's
    /// fields, in declaration order: the insert binds in that order and
    /// reads decode by these names.
    #[test]
    fn the_column_list_is_the_record_s_fields() {
        let mut record = super::super::tests::record_with_every_field("x");
        record.intent = true;
        let serde_json::Value::Object(fields) = serde_json::to_value(&record).unwrap() else {
            panic!("a record serializes as an object");
        };
        let (chain, record_columns) = INSERTED_COLUMNS.split_at(4);
        assert_eq!(chain, ["chain_id", "seq", "prev_hash", "hash"]);
        assert!(columns().starts_with("id, chain_id, seq"));
        let mut sorted_columns = record_columns.to_vec();
        sorted_columns.sort_unstable();
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(sorted_columns, names);
    }
}
