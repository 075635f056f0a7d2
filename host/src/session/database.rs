//! The call context in PostgreSQL (`[sessions] store = "database"`), so that
//! every replica sharing the audit database sees the same sessions, labels
//! and counts. The rules are those of [`super`]; this file keeps them in the
//! tables of migration `0020_sessions.sql`, under locks that hold across
//! replicas:
//!
//! - a call's start is one statement ([`BEGIN_CALL`]): the session's last
//!   use, both counters and both label sets;
//! - opening a session and adding labels take the owner's advisory lock, so
//!   two replicas cannot both stay under `max_per_principal` or under the
//!   label bound; adding labels or a source then locks the session's row,
//!   which an eviction deletes — a session closed meanwhile hands the labels
//!   to the principal.
//!
//! Usage counters and labels use the ledger's connections, which commit
//! without waiting for the log flush (like the ledger, they are made durable
//! by the flush of the call's audit record).
//!
//! A database that cannot be reached denies calls at once, not after each
//! waits out the connection time-out ([`Breaker`]).

use std::collections::BTreeSet;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgPool, Postgres, Transaction};

use super::{CallLabels, LABELS_MAX, Owner, SOURCES_MAX, Source, Usage, insert_bounded};
use crate::audit::{AuditStore, Breaker};
use crate::config::SessionSettings;

#[derive(Debug)]
pub(super) struct Database {
    pool: PgPool,
    breaker: Breaker,
}

/// A call's start in one statement, for (tenant $1, principal $2) in
/// session $3 (NULL: none): when $3 is a session of theirs, or there is
/// none, it marks the session used and counts the call for the principal
/// and (the row with principal '') the tenant, in that order (no deadlock);
/// it returns the session's labels, the principal's live labels and both
/// counts. `live` is false, and nothing counted, when $3 is not theirs.
/// Plain SQL: a plpgsql function doing the same held a third less
/// throughput (pgbench, 8 clients: 15,300 against 20,700 per second).
const BEGIN_CALL: &str = "
    WITH touched AS (
        UPDATE warden_sessions SET last_used = nextval('warden_session_clock')
         WHERE id = $3 AND tenant = $1 AND principal = $2
        RETURNING id
    ), live AS (
        SELECT $3::text IS NULL OR EXISTS (SELECT 1 FROM touched) AS live
    ), counted AS (
        INSERT INTO warden_usage_counters AS u (tenant, principal, calls)
        SELECT $1, who, 1 FROM (VALUES ($2::text), ('')) AS v (who), live WHERE live.live
        ON CONFLICT (tenant, principal) DO UPDATE SET calls = u.calls + 1
        RETURNING u.principal, u.calls
    )
    SELECT live.live,
           ARRAY(SELECT l.label FROM warden_session_labels l
                  WHERE l.session = $3 AND EXISTS (SELECT 1 FROM touched)
                  ORDER BY l.label) AS session_labels,
           ARRAY(SELECT p.label FROM warden_principal_labels p
                  WHERE p.tenant = $1 AND p.principal = $2 AND p.until > now()
                  ORDER BY p.label) AS principal_labels,
           (SELECT calls FROM counted WHERE principal = '') AS tenant_calls,
           (SELECT calls FROM counted WHERE principal = $2) AS principal_calls
      FROM live";

/// A row of [`BEGIN_CALL`]; the counts are null for a session that is not
/// live.
#[derive(sqlx::FromRow)]
struct Begun {
    live: bool,
    session_labels: Vec<String>,
    principal_labels: Vec<String>,
    tenant_calls: Option<i64>,
    principal_calls: Option<i64>,
}

/// A row of `warden_session_sources`.
#[derive(sqlx::FromRow)]
struct SourceRow {
    call_id: String,
    target: String,
    locator: Option<String>,
    digest: String,
    content: Option<String>,
}

impl Database {
    pub(super) fn new(pool: PgPool) -> Database {
        let breaker = Breaker::new("the session store", &AuditStore::Postgres(pool.clone()));
        Database { pool, breaker }
    }

    /// A connection, unless the store is down (then `PoolTimedOut` at
    /// once: [`Breaker`]).
    async fn connection(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.breaker.check()?;
        self.breaker.observe(self.pool.acquire().await)
    }

    pub(super) async fn open(
        &self,
        owner: &Owner,
        id: &str,
        settings: &SessionSettings,
    ) -> Result<(), sqlx::Error> {
        let mut connection = self.connection().await?;
        let mut tx = connection.begin().await?;
        lock_owner(&mut tx, owner).await?;
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM warden_sessions WHERE tenant = $1 AND principal = $2",
        )
        .bind(&owner.0)
        .bind(&owner.1)
        .fetch_one(&mut *tx)
        .await?;
        let max = settings.max_per_principal.max(1) as i64;
        if held >= max {
            // The least recently used sessions go, enough to make room (more
            // than one only when `max_per_principal` was lowered); their
            // labels stick to the principal first.
            let evicted: Vec<(String, Vec<String>)> = sqlx::query_as(
                "WITH oldest AS (
                     SELECT id FROM warden_sessions WHERE tenant = $1 AND principal = $2
                     ORDER BY last_used LIMIT $3
                 ), moved AS (
                     INSERT INTO warden_principal_labels (tenant, principal, label, until)
                     SELECT DISTINCT $1, $2, l.label, now() + make_interval(secs => $4)
                     FROM warden_session_labels l WHERE l.session IN (SELECT id FROM oldest)
                     ON CONFLICT (tenant, principal, label) DO UPDATE SET until = excluded.until
                 )
                 DELETE FROM warden_sessions s WHERE s.id IN (SELECT id FROM oldest)
                 RETURNING s.id, ARRAY(SELECT l.label FROM warden_session_labels l
                                       WHERE l.session = s.id ORDER BY l.label)",
            )
            .bind(&owner.0)
            .bind(&owner.1)
            .bind(held - max + 1)
            .bind(settings.label_ttl.as_secs_f64())
            .fetch_all(&mut *tx)
            .await?;
            for (session, labels) in evicted {
                super::log_eviction(owner, &session, &labels.into_iter().collect());
            }
        }
        sqlx::query(
            "INSERT INTO warden_sessions (id, tenant, principal, last_used)
             VALUES ($1, $2, $3, nextval('warden_session_clock'))",
        )
        .bind(id)
        .bind(&owner.0)
        .bind(&owner.1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    pub(super) async fn is_live(&self, owner: &Owner, id: &str) -> Result<bool, sqlx::Error> {
        let mut connection = self.connection().await?;
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM warden_sessions
                            WHERE id = $1 AND tenant = $2 AND principal = $3)",
        )
        .bind(id)
        .bind(&owner.0)
        .bind(&owner.1)
        .fetch_one(&mut *connection)
        .await
    }

    /// `None` when `session` is not a live session of `owner`.
    pub(super) async fn begin_call(
        &self,
        owner: &Owner,
        session: Option<&str>,
    ) -> Result<Option<CallLabels>, sqlx::Error> {
        let mut connection = self.connection().await?;
        let begun: Begun = sqlx::query_as(BEGIN_CALL)
            .bind(&owner.0)
            .bind(&owner.1)
            .bind(session)
            .fetch_one(&mut *connection)
            .await?;
        if !begun.live {
            return Ok(None);
        }
        let principal = begun.principal_labels;
        let mut all: BTreeSet<String> = begun.session_labels.into_iter().collect();
        all.extend(principal.iter().cloned());
        Ok(Some(CallLabels {
            session: all.into_iter().collect(),
            principal,
            usage: Usage {
                tenant_calls: count(begun.tenant_calls),
                principal_calls: count(begun.principal_calls),
            },
        }))
    }

    pub(super) async fn session_labels(
        &self,
        owner: &Owner,
        session: Option<&str>,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut connection = self.connection().await?;
        sqlx::query_scalar(
            "SELECT l.label FROM warden_session_labels l
               JOIN warden_sessions s ON s.id = l.session
              WHERE s.id = $3 AND s.tenant = $1 AND s.principal = $2
             UNION
             SELECT label FROM warden_principal_labels
              WHERE tenant = $1 AND principal = $2 AND until > now()
             ORDER BY 1",
        )
        .bind(&owner.0)
        .bind(&owner.1)
        .bind(session)
        .fetch_all(&mut *connection)
        .await
    }

    /// `labels` are bounded already.
    pub(super) async fn add_labels(
        &self,
        owner: &Owner,
        session: Option<&str>,
        labels: Vec<String>,
        settings: &SessionSettings,
    ) -> Result<(), sqlx::Error> {
        let labels: Vec<String> = labels.into_iter().map(storable).collect();
        let mut connection = self.connection().await?;
        let mut tx = connection.begin().await?;
        lock_owner(&mut tx, owner).await?;
        let live = match session {
            Some(id) => lock_session(&mut tx, owner, id).await?,
            None => false,
        };
        let to_principal: Vec<String> = if let (true, Some(id)) = (live, session) {
            let held: Vec<String> =
                sqlx::query_scalar("SELECT label FROM warden_session_labels WHERE session = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            let mut kept: BTreeSet<String> = held.iter().cloned().collect();
            for label in &labels {
                insert_bounded(&mut kept, label.clone(), settings);
            }
            let new: Vec<&String> = kept.iter().filter(|l| !held.contains(l)).collect();
            sqlx::query(
                "INSERT INTO warden_session_labels (session, label)
                 SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(new)
            .execute(&mut *tx)
            .await?;
            labels
                .into_iter()
                .filter(|l| settings.is_sticky(l))
                .collect()
        } else {
            labels
        };
        if !to_principal.is_empty() {
            sqlx::query(
                "DELETE FROM warden_principal_labels
                  WHERE tenant = $1 AND principal = $2 AND until <= now()",
            )
            .bind(&owner.0)
            .bind(&owner.1)
            .execute(&mut *tx)
            .await?;
            let held: Vec<String> = sqlx::query_scalar(
                "SELECT label FROM warden_principal_labels WHERE tenant = $1 AND principal = $2",
            )
            .bind(&owner.0)
            .bind(&owner.1)
            .fetch_all(&mut *tx)
            .await?;
            let mut room = LABELS_MAX.saturating_sub(held.len());
            let mut kept = BTreeSet::new();
            for label in to_principal {
                if held.contains(&label) || settings.is_sticky(&label) {
                    kept.insert(label);
                } else if room > 0 {
                    if kept.insert(label) {
                        room -= 1;
                    }
                } else {
                    tracing::warn!(%label, "principal holds {LABELS_MAX} labels; label dropped");
                }
            }
            sqlx::query(
                "INSERT INTO warden_principal_labels (tenant, principal, label, until)
                 SELECT $1, $2, unnest($3::text[]), now() + make_interval(secs => $4)
                 ON CONFLICT (tenant, principal, label) DO UPDATE SET until = excluded.until",
            )
            .bind(&owner.0)
            .bind(&owner.1)
            .bind(kept.into_iter().collect::<Vec<_>>())
            .bind(settings.label_ttl.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    pub(super) async fn sources(
        &self,
        owner: &Owner,
        session: Option<&str>,
    ) -> Result<Vec<Source>, sqlx::Error> {
        let Some(session) = session else {
            return Ok(Vec::new());
        };
        let mut connection = self.connection().await?;
        let rows: Vec<SourceRow> = sqlx::query_as(
            "SELECT src.call_id, src.target, src.locator, src.digest, src.content
                   FROM warden_session_sources src
                   JOIN warden_sessions s ON s.id = src.session
                  WHERE s.id = $1 AND s.tenant = $2 AND s.principal = $3
                  ORDER BY src.seq",
        )
        .bind(session)
        .bind(&owner.0)
        .bind(&owner.1)
        .fetch_all(&mut *connection)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Source {
                id: row.call_id,
                target: row.target,
                locator: row.locator,
                digest: row.digest,
                content: row.content.map(Into::into),
            })
            .collect())
    }

    /// `source` carries content only when it fits `budget` alone.
    pub(super) async fn add_source(
        &self,
        owner: &Owner,
        session: Option<&str>,
        source: Source,
        budget: usize,
    ) -> Result<(), sqlx::Error> {
        let Some(session) = session else {
            return Ok(());
        };
        let mut connection = self.connection().await?;
        let mut tx = connection.begin().await?;
        if !lock_session(&mut tx, owner, session).await? {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO warden_session_sources (session, call_id, target, locator, digest, content)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session)
        .bind(storable(source.id))
        .bind(storable(source.target))
        .bind(source.locator.map(storable))
        .bind(source.digest)
        .bind(source.content.map(|c| storable(c.to_string())))
        .execute(&mut *tx)
        .await?;
        // The oldest past SOURCES_MAX go; then, oldest first, content past
        // the budget (counted from the newest) is dropped, the digest kept.
        sqlx::query(
            "DELETE FROM warden_session_sources WHERE session = $1 AND seq NOT IN (
                 SELECT seq FROM warden_session_sources WHERE session = $1
                 ORDER BY seq DESC LIMIT $2)",
        )
        .bind(session)
        .bind(SOURCES_MAX as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE warden_session_sources SET content = NULL
              WHERE session = $1 AND seq IN (
                  SELECT seq FROM (
                      SELECT seq, sum(octet_length(content)) OVER (ORDER BY seq DESC) AS newer
                        FROM warden_session_sources WHERE session = $1 AND content IS NOT NULL
                  ) held WHERE newer > $2)",
        )
        .bind(session)
        .bind(budget as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

/// Serialises, across replicas, changes to one owner's set of sessions and
/// labels (released at commit).
async fn lock_owner(tx: &mut Transaction<'_, Postgres>, owner: &Owner) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(1) || $2, 0))")
        .bind(&owner.0)
        .bind(&owner.1)
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// Locks `session`'s row if it is a live session of `owner`; false if not.
async fn lock_session(
    tx: &mut Transaction<'_, Postgres>,
    owner: &Owner,
    session: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM warden_sessions WHERE id = $1 AND tenant = $2 AND principal = $3
         FOR UPDATE",
    )
    .bind(session)
    .bind(&owner.0)
    .bind(&owner.1)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

fn count(value: Option<i64>) -> u64 {
    value.unwrap_or_default().max(0) as u64
}

/// PostgreSQL `text` refuses NUL: it is kept as the six characters `\u0000`,
/// as in the audit trail.
fn storable(mut value: String) -> String {
    crate::audit::escape_nul(&mut value);
    value
}
