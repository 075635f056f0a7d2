//! Monthly partitions of the audit trail (migration 0021 on PostgreSQL).
//!
//! Each month of `recorded_at` (UTC) is one partition, `audit_records_YYYY_MM`;
//! the table as it was before partitioning is `audit_records_before_YYYY_MM`
//! (everything before that month). [`maintain`] creates the current month
//! and the next [`MONTHS_AHEAD`] before records need them, so records land in
//! `audit_records_default` only if no host has run for months; a month
//! created later takes its rows out of the default partition. SQLite has no
//! partitions: its months are ranges of one table ([`Segment`] covers both).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sqlx::postgres::PgPool;

use super::AuditStore;

/// Months created ahead of the current one.
const MONTHS_AHEAD: u32 = 2;

/// How often a host checks that the months ahead exist.
const MAINTAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The month `at` falls in.
    pub fn of(at: DateTime<Utc>) -> Month {
        Month {
            year: at.year(),
            month: at.month(),
        }
    }

    /// Its first instant.
    pub fn start(self) -> DateTime<Utc> {
        let day = NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default();
        Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// `YYYY_MM`, as partition names end.
    fn suffix(self) -> String {
        format!("{:04}_{:02}", self.year, self.month)
    }

    /// The month a `YYYY_MM` suffix names.
    fn parse(suffix: &str) -> Option<Month> {
        let (year, month) = suffix.split_once('_')?;
        let (year, month) = (year.parse().ok()?, month.parse().ok()?);
        (suffix.len() == 7 && (1..=12).contains(&month)).then_some(Month { year, month })
    }
}

/// A stretch of the trail that is archived and dropped as one: a partition
/// on PostgreSQL, a month of the one table on SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The partition's name (on SQLite, the name it would have).
    pub name: String,
    /// First instant it holds; `None` for the partition of everything before `to`.
    pub from: Option<DateTime<Utc>>,
    /// First instant it no longer holds.
    pub to: DateTime<Utc>,
}

impl Segment {
    /// The segment of one month.
    pub fn month(month: Month) -> Segment {
        Segment {
            name: format!("audit_records_{}", month.suffix()),
            from: Some(month.start()),
            to: month.next().start(),
        }
    }

    /// What a partition's name says it holds; `None` for the default
    /// partition and any an operator named otherwise.
    pub fn from_name(name: &str) -> Option<Segment> {
        if let Some(suffix) = name.strip_prefix("audit_records_before_") {
            return Some(Segment {
                name: name.to_string(),
                from: None,
                to: Month::parse(suffix)?.start(),
            });
        }
        let segment = Segment::month(Month::parse(name.strip_prefix("audit_records_")?)?);
        (segment.name == name).then_some(segment)
    }
}

/// The partitions of the audit table on PostgreSQL that [`Segment::from_name`]
/// understands, oldest first.
pub(super) async fn partitions(pool: &PgPool) -> Result<Vec<Segment>, sqlx::Error> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'audit_records'::regclass",
    )
    .fetch_all(pool)
    .await?;
    let mut segments: Vec<Segment> = names
        .iter()
        .filter_map(|(name,)| Segment::from_name(name))
        .collect();
    segments.sort_by_key(|s| s.to);
    Ok(segments)
}

/// Creates the partitions of the month of `now` and the months ahead that do
/// not exist yet, each in its own transaction, moving any rows the default
/// partition took for that month into it. Hosts sharing a database take
/// turns (an advisory lock). Returns the partitions created.
///
/// A month is made as a table of its own (with the trail's foreign key) and
/// then attached: attaching locks the audit table only against other schema
/// changes, so hosts go on writing records meanwhile. (`CREATE TABLE …
/// PARTITION OF` would lock it exclusively and then lock `audit_chains`,
/// whose rows every commit updates: a writer holding those would deadlock
/// with it.) A lock not granted within half a second gives up until the next
/// try, so writers queued behind it never wait longer.
pub async fn ensure(store: &AuditStore, now: DateTime<Utc>) -> Result<Vec<String>, sqlx::Error> {
    let AuditStore::Postgres(pool) = store else {
        return Ok(Vec::new());
    };
    let mut created = Vec::new();
    let mut month = Month::of(now);
    for _ in 0..=MONTHS_AHEAD {
        let segment = Segment::month(month);
        month = month.next();
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '500ms'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('warden_audit_partitions'))")
            .execute(&mut *tx)
            .await?;
        let existing = partitions(pool).await?;
        if existing
            .iter()
            .any(|p| p.name == segment.name || (p.from.is_none() && p.to >= segment.to))
        {
            continue;
        }
        // Instants of our own making, as SQL literals.
        let from = segment
            .from
            .unwrap_or_default()
            .format("'%Y-%m-%d %H:%M:%S+00'")
            .to_string();
        let to = segment.to.format("'%Y-%m-%d %H:%M:%S+00'").to_string();
        let name = &segment.name;
        for statement in [
            format!("CREATE TABLE {name} (LIKE audit_records INCLUDING DEFAULTS)"),
            format!(
                "ALTER TABLE {name} ADD CONSTRAINT {name}_chain \
                 FOREIGN KEY (chain_id) REFERENCES audit_chains (chain_id)"
            ),
            // Records the default partition took for this month (none, unless
            // no host ran for months) move with it.
            format!(
                "WITH moved AS (DELETE FROM audit_records_default \
                 WHERE recorded_at >= {from} AND recorded_at < {to} RETURNING *) \
                 INSERT INTO {name} SELECT * FROM moved"
            ),
            format!(
                "ALTER TABLE audit_records ATTACH PARTITION {name} FOR VALUES FROM ({from}) TO ({to})"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        created.push(segment.name);
    }
    Ok(created)
}

/// Keeps the months ahead in place while the audit log lives: every hour
/// (every minute while the store does not answer), at once unless `done`.
pub(super) async fn maintain(store: AuditStore, done: bool, alive: std::sync::Weak<()>) {
    if done {
        tokio::time::sleep(MAINTAIN_EVERY).await;
    }
    while alive.strong_count() > 0 {
        let pause = match ensure(&store, Utc::now()).await {
            Ok(created) => {
                for name in created {
                    tracing::info!(partition = %name, "audit partition created");
                }
                MAINTAIN_EVERY
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create the audit table's next partitions");
                std::time::Duration::from_secs(60)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{Month, Segment};

    #[test]
    fn partition_names_say_what_they_hold() {
        let december = Segment::from_name("audit_records_2026_12").unwrap();
        assert_eq!(
            december.from.unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(december.to.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        let before = Segment::from_name("audit_records_before_2027_01").unwrap();
        assert_eq!((before.from, before.to), (None, december.to));
        for other in [
            "audit_records_default",
            "audit_records_2026_13",
            "audit_records_2026_1",
            "audit_records_2026_12_old",
            "audit_records_before_x",
        ] {
            assert_eq!(Segment::from_name(other), None, "{other}");
        }
        assert_eq!(
            Month::of(december.to - chrono::Duration::microseconds(1)),
            Month::of(december.from.unwrap())
        );
    }
}
