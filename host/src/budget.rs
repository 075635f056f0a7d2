//! The spend ledger: budgets in money and in tokens, per principal, tenant,
//! team (a principal's `attributes.team`) and model, over a UTC day, a UTC
//! month or all time — kept in the audit database, so every replica sharing
//! it enforces the same budgets.
//!
//! A completion **reserves** its worst case before it goes out, in one
//! transaction that fails when the reservation would pass any applicable
//! budget (the reservation is one conditional upsert per budget, which locks
//! that budget's period row: concurrent reservations, on one replica or
//! several, queue on it and cannot overshoot together). When the answer is
//! in, the call **settles** to what it cost, or **releases** what it did not
//! spend; a reservation whose host died is **reclaimed** once it expires.
//! Amounts are integers: millionths of a US dollar, or tokens.
//!
//! A tool call with a price (`[tool_prices]`) goes through the same ledger:
//! it reserves its price against the money budgets in its scope (those
//! naming no model), and is charged it once the tool ran. A budget a call
//! asks nothing of (a token budget, for a tool call) is not held by it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditStore, on_pool};

/// How often a host reclaims reservations left by hosts that died.
const RECLAIM_EVERY: Duration = Duration::from_secs(5);
/// Every how many reclaims past rate-limit minutes are pruned (a minute).
const PRUNE_EVERY_TICKS: u64 = 12;
/// How long the counts and entries of a rate-limit minute are kept.
const MINUTES_KEPT_MS: i64 = 3_600_000;
/// Most entries one history read returns.
pub const HISTORY_MAX: i64 = 10_000;

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Money, in millionths of a US dollar.
    Usd,
    /// Tokens, prompt and completion.
    Tokens,
    /// Requests (a rate limit).
    Requests,
}

/// The period a budget's spend is counted over; it starts again at the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// From UTC midnight.
    Daily,
    /// From the first of the month, UTC.
    Monthly,
    /// Never starts again.
    Total,
    /// From the start of the minute (a rate limit).
    Minute,
}

impl Unit {
    /// `usd`, `tokens` or `requests`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Usd => "usd",
            Unit::Tokens => "tokens",
            Unit::Requests => "requests",
        }
    }

    fn parse(text: &str) -> Option<Unit> {
        match text {
            "usd" => Some(Unit::Usd),
            "tokens" => Some(Unit::Tokens),
            "requests" => Some(Unit::Requests),
            _ => None,
        }
    }
}

impl Period {
    /// `daily`, `monthly`, `total` or `minute`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Monthly => "monthly",
            Period::Total => "total",
            Period::Minute => "minute",
        }
    }

    fn parse(text: &str) -> Option<Period> {
        match text {
            "daily" => Some(Period::Daily),
            "monthly" => Some(Period::Monthly),
            "total" => Some(Period::Total),
            "minute" => Some(Period::Minute),
            _ => None,
        }
    }

    /// The start of the period holding `now`, and its end (none for `total`),
    /// in Unix milliseconds.
    pub fn bounds(self, now: DateTime<Utc>) -> (i64, Option<i64>) {
        let midnight = |y, m, d| {
            Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
                .single()
                .map_or(0, |t| t.timestamp_millis())
        };
        match self {
            Period::Daily => {
                let start = midnight(now.year(), now.month(), now.day());
                (start, Some(start + 86_400_000))
            }
            Period::Monthly => {
                let (y, m) = if now.month() == 12 {
                    (now.year() + 1, 1)
                } else {
                    (now.year(), now.month() + 1)
                };
                (
                    midnight(now.year(), now.month(), 1),
                    Some(midnight(y, m, 1)),
                )
            }
            Period::Total => (0, None),
            Period::Minute => {
                let start = now.timestamp_millis().div_euclid(60_000) * 60_000;
                (start, Some(start + 60_000))
            }
        }
    }
}

/// The start of every period holding `now`, in the order the queries
/// bind them: daily, monthly, minute.
fn starts(now: DateTime<Utc>) -> [i64; 3] {
    [Period::Daily, Period::Monthly, Period::Minute].map(|p| p.bounds(now).0)
}

/// Whom a budget applies to: every call matching all the fields given
/// (none given: every completion).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// A principal's id.
    pub principal: Option<String>,
    /// A tenant.
    pub tenant: Option<String>,
    /// A team (`attributes.team` of the principal).
    pub team: Option<String>,
    /// A model, by the name clients ask for.
    pub model: Option<String>,
}

impl Scope {
    /// The scope of these fields, or the field that is wrong and why.
    fn checked(
        principal: Option<String>,
        tenant: Option<String>,
        team: Option<String>,
        model: Option<String>,
    ) -> Result<Scope, (String, String)> {
        let scope = Scope {
            principal,
            tenant,
            team,
            model,
        };
        for (field, value) in [
            ("principal", &scope.principal),
            ("tenant", &scope.tenant),
            ("team", &scope.team),
            ("model", &scope.model),
        ] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.len() > 256 || v.chars().any(char::is_control))
            {
                return Err((
                    field.into(),
                    "must be 1 to 256 characters without control characters".into(),
                ));
            }
        }
        Ok(scope)
    }
}

/// `[rate_limits.NAME]` in the config: a budget of requests or tokens over
/// a minute, kept in the same ledger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    principal: Option<String>,
    tenant: Option<String>,
    team: Option<String>,
    model: Option<String>,
    /// Requests sent upstream per minute.
    requests_per_minute: Option<u64>,
    /// Tokens (prompt and completion) per minute.
    tokens_per_minute: Option<u64>,
}

impl RateLimitSection {
    /// The rate limit `name` this section declares, as a budget over a
    /// minute, or the field that is wrong and why.
    pub fn budget(self, name: &str) -> Result<Budget, (String, String)> {
        crate::manifest::validate_name(name).map_err(|m| (String::new(), m))?;
        let (unit, field, limit) = match (self.requests_per_minute, self.tokens_per_minute) {
            (Some(n), None) => (Unit::Requests, "requests_per_minute", n),
            (None, Some(n)) => (Unit::Tokens, "tokens_per_minute", n),
            _ => {
                return Err((
                    String::new(),
                    "set exactly one of `requests_per_minute` or `tokens_per_minute`".into(),
                ));
            }
        };
        let limit = i64::try_from(limit)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| (field.to_string(), "must be from 1 to 2^63 - 1".to_string()))?;
        Ok(Budget {
            name: name.to_string(),
            scope: Scope::checked(self.principal, self.tenant, self.team, self.model)?,
            unit,
            period: Period::Minute,
            limit,
        })
    }
}

/// `[budgets.NAME]` in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    principal: Option<String>,
    tenant: Option<String>,
    team: Option<String>,
    model: Option<String>,
    /// The limit in US dollars (at most 6 decimal places).
    limit_usd: Option<f64>,
    /// The limit in tokens.
    limit_tokens: Option<u64>,
    period: Period,
}

/// One budget: a limit on what calls in its scope may spend per period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Its name (`[budgets.NAME]`).
    pub name: String,
    /// Whom it applies to.
    #[serde(flatten)]
    pub scope: Scope,
    /// What it counts.
    pub unit: Unit,
    /// Over what it counts.
    pub period: Period,
    /// The limit, in millionths of a dollar or in tokens.
    pub limit: i64,
}

impl BudgetSection {
    /// The budget `name` this section declares, or the field that is wrong and why.
    pub fn budget(self, name: &str) -> Result<Budget, (String, String)> {
        crate::manifest::validate_name(name).map_err(|m| (String::new(), m))?;
        let (unit, limit) = match (self.limit_usd, self.limit_tokens) {
            (Some(usd), None) => (
                Unit::Usd,
                micro_usd(usd).map_err(|m| ("limit_usd".into(), m))?,
            ),
            (None, Some(tokens)) => (
                Unit::Tokens,
                i64::try_from(tokens)
                    .map_err(|_| ("limit_tokens".into(), "is too large".into()))?,
            ),
            _ => {
                return Err((
                    String::new(),
                    "set exactly one of `limit_usd` or `limit_tokens`".into(),
                ));
            }
        };
        let scope = Scope::checked(self.principal, self.tenant, self.team, self.model)?;
        Ok(Budget {
            name: name.to_string(),
            scope,
            unit,
            period: self.period,
            limit,
        })
    }
}

/// Dollars as millionths of a dollar, exactly, or why they cannot be.
pub fn micro_usd(dollars: f64) -> Result<i64, String> {
    let micro = dollars * 1e6;
    if !(0.0..=1e18).contains(&micro) {
        return Err(format!(
            "`{dollars}` must be an amount from 0 to 1,000,000,000,000 dollars"
        ));
    }
    if (micro - micro.round()).abs() > 1e-6 * micro.max(1.0) {
        return Err(format!("`{dollars}` has more than 6 decimal places"));
    }
    Ok(micro.round() as i64)
}

/// The one asking: what a budget's scope is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// The principal's id.
    pub principal: &'a str,
    /// Its tenant.
    pub tenant: &'a str,
    /// Its team, when it has one.
    pub team: Option<&'a str>,
    /// The model asked for (after routing, the one that serves); none for
    /// a tool call, which only budgets naming no model apply to.
    pub model: Option<&'a str>,
}

/// A budget with what its current period has spent and holds reserved.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetStatus {
    /// The budget.
    #[serde(flatten)]
    pub budget: Budget,
    /// Settled this period.
    pub spent: i64,
    /// Held by calls still running.
    pub reserved: i64,
    /// What a new reservation may still take: limit − spent − reserved, at least 0.
    pub remaining: i64,
    /// When the period started, Unix milliseconds.
    pub period_start: i64,
    /// When it ends (none for `total`), Unix milliseconds.
    pub period_end: Option<i64>,
}

/// Amounts in both units: a worst case reserved, or what a call cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    /// Millionths of a US dollar.
    pub micro_usd: u64,
    /// Tokens.
    pub tokens: u64,
    /// Requests: 1 for a call that was sent, 0 for one that was not.
    #[serde(default)]
    pub requests: u64,
}

impl Amounts {
    fn of(self, unit: Unit) -> i64 {
        let amount = match unit {
            Unit::Usd => self.micro_usd,
            Unit::Tokens => self.tokens,
            Unit::Requests => self.requests,
        };
        i64::try_from(amount).unwrap_or(i64::MAX)
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It would pass this budget.
    Exceeded {
        /// The budget.
        budget: String,
        /// Its unit.
        unit: Unit,
        /// Its period (`minute`: a rate limit).
        period: Period,
        /// Its limit.
        limit: i64,
        /// Spent and reserved in its period when refused.
        used: i64,
        /// What the call asked to reserve.
        asked: i64,
        /// When the period ends (then the budget has room again).
        period_end: Option<i64>,
    },
    /// A money budget applies, and the model has no prices.
    Unpriced {
        /// The budget.
        budget: String,
    },
    /// The ledger could not be read or written (the message is for the log).
    Unavailable(String),
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Refusal {
        Refusal::Unavailable(e.to_string())
    }
}

/// A reservation held for one call until it settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// The worst case reserved (in each unit some budget counts).
    pub worst: Amounts,
    /// The budgets it holds, by name.
    pub budgets: Vec<String>,
}

/// What a call's audit record says of its spend (`spend`): the budgets
/// its reservation held, its worst case and what the ledger charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// The budgets its reservation held.
    pub budgets: Vec<String>,
    /// Its worst case, reserved.
    pub reserved: Amounts,
    /// What the ledger charged (all zero when released).
    pub charged: Amounts,
}

/// `[tool_prices]`: what a call of a tool costs, in millionths of a dollar,
/// by target glob (`"search.*" = 0.002`, in dollars per call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPrices(Vec<(String, u64)>);

impl ToolPrices {
    /// Prices from `[tool_prices]` (glob → dollars per call), or the glob
    /// whose price is wrong and why.
    pub fn new(
        prices: impl IntoIterator<Item = (String, f64)>,
    ) -> Result<ToolPrices, (String, String)> {
        prices
            .into_iter()
            .map(|(glob, dollars)| {
                if glob.is_empty() || glob.len() > 256 || glob.chars().any(char::is_control) {
                    return Err((glob, "must be a target glob of 1 to 256 characters".into()));
                }
                let micro = micro_usd(dollars).map_err(|m| (glob.clone(), m))?;
                Ok((glob, u64::try_from(micro).unwrap_or(0)))
            })
            .collect::<Result<_, _>>()
            .map(ToolPrices)
    }

    /// The price of one call of `tool`: the highest of the globs that match
    /// it (a tool two globs price is never charged the lesser), none when no
    /// glob does.
    pub fn of(&self, tool: &str) -> Option<u64> {
        self.0
            .iter()
            .filter(|(glob, _)| crate::glob::glob_matches(glob, tool))
            .map(|(_, price)| *price)
            .max()
    }
}

/// How a call's reservation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The call cost this.
    Charged(Amounts),
    /// Nothing was spent.
    Released,
}

/// One ledger entry of a budget: a call's reservation and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The call (its audit record's `call_id`).
    pub call_id: String,
    /// The period it counts in, Unix milliseconds.
    pub period_start: i64,
    /// Reserved.
    pub reserved: i64,
    /// Charged once settled.
    pub charged: Option<i64>,
    /// `reserved`, `settled`, `released` or `reclaimed`.
    pub state: String,
    /// When it was reserved, Unix milliseconds.
    pub reserved_at: i64,
    /// When it settled.
    pub settled_at: Option<i64>,
}

/// One change of a budget's limit.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// When, Unix milliseconds.
    pub at: i64,
    /// Who: `config`, or the principal that set it.
    pub by: String,
    /// The new limit; none when the budget was removed.
    pub limit: Option<i64>,
    /// The limit before; none when the budget was new.
    pub previous: Option<i64>,
}

/// A budget's history: its limit changes and its ledger entries, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// Limit changes.
    pub changes: Vec<Change>,
    /// Ledger entries.
    pub entries: Vec<Entry>,
}

/// What a run-time `set` asks: the limit, and for a new budget its scope and period.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetChange {
    /// Whom a new budget applies to (an existing one keeps its scope).
    pub principal: Option<String>,
    /// See [`Scope`].
    pub tenant: Option<String>,
    /// See [`Scope`].
    pub team: Option<String>,
    /// See [`Scope`].
    pub model: Option<String>,
    /// The limit in dollars.
    pub limit_usd: Option<f64>,
    /// The limit in tokens.
    pub limit_tokens: Option<u64>,
    /// The limit in requests (a rate limit: its period is `minute`).
    #[serde(default)]
    pub limit_requests: Option<u64>,
    /// A new budget's period.
    pub period: Option<Period>,
}

/// The spend ledger over the audit store.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: AuditStore,
    /// Denies at once while the database cannot be reached.
    breaker: crate::audit::Breaker,
    /// The budgets the config declares, written to the store once it answers.
    configured: Arc<[Budget]>,
    ready: Arc<tokio::sync::OnceCell<()>>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The budgets in the scope of `who`, with the current period's counts.
const APPLICABLE: &str = "SELECT b.name, b.principal, b.tenant, b.team, b.model, b.unit, \
     b.period, b.amount, COALESCE(p.spent, 0), COALESCE(p.reserved, 0) \
     FROM budgets b LEFT JOIN budget_periods p ON p.budget = b.name AND p.period_start = \
     CASE b.period WHEN 'daily' THEN $5 WHEN 'monthly' THEN $6 WHEN 'minute' THEN $7 ELSE 0 END \
     WHERE (b.principal IS NULL OR b.principal = $1) AND (b.tenant IS NULL OR b.tenant = $2) \
     AND (b.team IS NULL OR b.team = $3) AND (b.model IS NULL OR b.model = $4) \
     ORDER BY b.name";

/// Every budget, with the current period's counts.
const ALL: &str = "SELECT b.name, b.principal, b.tenant, b.team, b.model, b.unit, \
     b.period, b.amount, COALESCE(p.spent, 0), COALESCE(p.reserved, 0) \
     FROM budgets b LEFT JOIN budget_periods p ON p.budget = b.name AND p.period_start = \
     CASE b.period WHEN 'daily' THEN $1 WHEN 'monthly' THEN $2 WHEN 'minute' THEN $3 ELSE 0 END \
     ORDER BY b.name";

/// Decodes a row of [`APPLICABLE`] or [`ALL`].
macro_rules! status_row {
    ($row:expr, $now:expr) => {{
        use sqlx::Row;
        let row = $row;
        let unit: String = row.try_get(5)?;
        let period: String = row.try_get(6)?;
        let (unit, period) = match (Unit::parse(&unit), Period::parse(&period)) {
            (Some(unit), Some(period)) => (unit, period),
            _ => {
                return Err(sqlx::Error::Decode(
                    format!("budget with unit `{unit}` and period `{period}`").into(),
                ));
            }
        };
        let (period_start, period_end) = period.bounds($now);
        let limit: i64 = row.try_get(7)?;
        let spent: i64 = row.try_get(8)?;
        let reserved: i64 = row.try_get(9)?;
        BudgetStatus {
            budget: Budget {
                name: row.try_get(0)?,
                scope: Scope {
                    principal: row.try_get(1)?,
                    tenant: row.try_get(2)?,
                    team: row.try_get(3)?,
                    model: row.try_get(4)?,
                },
                unit,
                period,
                limit,
            },
            spent,
            reserved,
            remaining: limit.saturating_sub(spent).saturating_sub(reserved).max(0),
            period_start,
            period_end,
        }
    }};
}

/// Keeps one change of a budget's limit: `$tx` budget, at, by, limit, previous.
macro_rules! record_change {
    ($tx:expr, $budget:expr, $at:expr, $by:expr, $limit:expr, $previous:expr) => {
        sqlx::query(
            "INSERT INTO budget_changes (budget, at, by_whom, amount, previous) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($budget)
        .bind($at)
        .bind($by)
        .bind($limit)
        .bind($previous)
        .execute($tx)
        .await
    };
}

/// Runs `$body` (an async block's contents, `Result`-valued, using `$tx`)
/// in a transaction that takes the write lock first on SQLite (`BEGIN
/// IMMEDIATE`): commits when it is `Ok`, rolls back otherwise.
macro_rules! in_transaction {
    ($store:expr, $tx:ident => $body:expr) => {
        match $store {
            AuditStore::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
            AuditStore::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
        }
    };
}

impl Ledger {
    /// The ledger over `store`, with the budgets the config declares.
    pub fn new(store: AuditStore, configured: Vec<Budget>) -> Ledger {
        Ledger {
            breaker: crate::audit::Breaker::new("the spend ledger", &store),
            store,
            configured: configured.into(),
            ready: Arc::default(),
        }
    }

    /// Migrates the store, writes the configured budgets and reclaims
    /// expired reservations, once; until that succeeds, every use retries it.
    async fn ready(&self) -> Result<(), sqlx::Error> {
        self.breaker.check()?;
        let ready = self
            .ready
            .get_or_try_init(|| async {
                self.store
                    .migrate()
                    .await
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                self.seed().await?;
                self.reclaim().await?;
                Ok(())
            })
            .await
            .map(|_| ());
        self.breaker.observe(ready)
    }

    /// Starts reclaiming expired reservations every few seconds, for as
    /// long as the runtime runs.
    pub fn spawn_reclaimer(&self) {
        let ledger = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RECLAIM_EVERY);
            for tick in 0u64.. {
                every.tick().await;
                if tick % PRUNE_EVERY_TICKS == PRUNE_EVERY_TICKS - 1
                    && let Err(e) = ledger.prune().await
                {
                    tracing::debug!(error = %e, "pruning past rate-limit minutes failed");
                }
                // Not `ready`: a store no ledger used yet (its tables perhaps
                // not even created) has nothing to reclaim.
                match ledger.reclaim().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        reservations = n,
                        "reclaimed reservations whose hosts did not settle them"
                    ),
                    Err(e) => tracing::debug!(error = %e, "reclaiming reservations failed"),
                }
            }
        });
    }

    /// Writes the configured budgets: a new one, or one whose config
    /// changed, takes the config's limit (a limit set at run time stays
    /// while the config does not change); a budget config no longer
    /// declares is removed.
    async fn seed(&self) -> Result<(), sqlx::Error> {
        let now = now_ms();
        in_transaction!(&self.store, tx => async {
            for budget in self.configured.iter() {
                let previous: Option<(i64,)> =
                    sqlx::query_as("SELECT amount FROM budgets WHERE name = $1")
                        .bind(&budget.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                let changed = sqlx::query(
                    "INSERT INTO budgets (name, principal, tenant, team, model, unit, period, \
                     amount, config_amount, updated_at, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, 'config') \
                     ON CONFLICT (name) DO UPDATE SET principal = excluded.principal, \
                     tenant = excluded.tenant, team = excluded.team, model = excluded.model, \
                     unit = excluded.unit, period = excluded.period, amount = excluded.amount, \
                     config_amount = excluded.amount, updated_at = excluded.updated_at, \
                     updated_by = 'config' \
                     WHERE budgets.config_amount IS DISTINCT FROM excluded.config_amount \
                     OR budgets.principal IS DISTINCT FROM excluded.principal \
                     OR budgets.tenant IS DISTINCT FROM excluded.tenant \
                     OR budgets.team IS DISTINCT FROM excluded.team \
                     OR budgets.model IS DISTINCT FROM excluded.model \
                     OR budgets.unit <> excluded.unit OR budgets.period <> excluded.period",
                )
                .bind(&budget.name)
                .bind(&budget.scope.principal)
                .bind(&budget.scope.tenant)
                .bind(&budget.scope.team)
                .bind(&budget.scope.model)
                .bind(budget.unit.as_str())
                .bind(budget.period.as_str())
                .bind(budget.limit)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed > 0 {
                    record_change!(&mut *tx, &budget.name, now, "config", Some(budget.limit), previous.map(|p| p.0))?;
                }
            }
            let stale: Vec<(String, i64)> = sqlx::query_as(
                "SELECT name, amount FROM budgets WHERE config_amount IS NOT NULL",
            )
            .fetch_all(&mut *tx)
            .await?;
            for (name, amount) in stale {
                if self.configured.iter().any(|b| b.name == name) {
                    continue;
                }
                sqlx::query("DELETE FROM budgets WHERE name = $1")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                record_change!(&mut *tx, &name, now, "config", None::<i64>, Some(amount))?;
            }
            Ok::<(), sqlx::Error>(())
        }
        .await)
    }

    /// The budgets that apply to `who`, with their current counts.
    pub async fn applicable(&self, who: Who<'_>) -> Result<Vec<BudgetStatus>, sqlx::Error> {
        self.ready().await?;
        self.breaker.observe(self.applicable_now(who).await)
    }

    async fn applicable_now(&self, who: Who<'_>) -> Result<Vec<BudgetStatus>, sqlx::Error> {
        let now = Utc::now();
        let [day, month, minute] = starts(now);
        let rows = on_pool!(&self.store, pool => {
            let rows = sqlx::query(APPLICABLE)
                .bind(who.principal)
                .bind(who.tenant)
                .bind(who.team)
                .bind(who.model)
                .bind(day)
                .bind(month)
                .bind(minute)
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(|row| Ok(status_row!(row, now))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Every budget, with its current counts.
    pub async fn list(&self) -> Result<Vec<BudgetStatus>, sqlx::Error> {
        self.ready().await?;
        let now = Utc::now();
        let [day, month, minute] = starts(now);
        let rows = on_pool!(&self.store, pool => {
            let rows = sqlx::query(ALL).bind(day).bind(month).bind(minute).fetch_all(pool).await?;
            rows.into_iter().map(|row| Ok(status_row!(row, now))).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Reserves `worst` for the call `call_id` against every budget that
    /// applies to `who`, or refuses it, all or nothing. `priced` says
    /// whether the model has prices (a money budget refuses it if not).
    /// The reservation expires `expires_in` from now. None when no budget applies.
    pub async fn reserve(
        &self,
        call_id: &str,
        who: Who<'_>,
        worst: Amounts,
        priced: bool,
        expires_in: Duration,
    ) -> Result<Option<Reservation>, Refusal> {
        self.ready().await?;
        let now = Utc::now();
        let expires_at = now
            .timestamp_millis()
            .saturating_add(i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX));
        let ask = Ask {
            call_id,
            who,
            worst,
            priced,
            now,
            expires_at,
        };
        let held = match &self.store {
            AuditStore::Postgres(pool) => {
                let mut connection = self.breaker.observe(pool.acquire().await)?;
                reserve_on_postgres(&mut connection, &ask).await?
            }
            AuditStore::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let held = reserve_in(&mut tx, &ask).await?;
                tx.commit().await?;
                held
            }
        };
        Ok((!held.is_empty()).then_some(Reservation {
            worst,
            budgets: held,
        }))
    }

    /// Ends the `held` reservations of `call_id`: charged what the call
    /// cost, or released. A reservation already reclaimed is still charged
    /// (the provider billed it), so the ledger agrees with the audit trail.
    pub async fn settle(
        &self,
        call_id: &str,
        held: usize,
        settlement: Settlement,
    ) -> Result<(), sqlx::Error> {
        self.ready().await?;
        let (state, amounts) = match settlement {
            Settlement::Charged(amounts) => ("settled", amounts),
            Settlement::Released => ("released", Amounts::default()),
        };
        let (usd, tokens, requests) = (
            amounts.of(Unit::Usd),
            amounts.of(Unit::Tokens),
            amounts.of(Unit::Requests),
        );
        let now = now_ms();
        match &self.store {
            AuditStore::Postgres(pool) => {
                let mut connection = self.breaker.observe(pool.acquire().await)?;
                sqlx::query("SELECT warden_settle($1, $2, $3, $4, $5, $6)")
                    .bind(call_id)
                    .bind(state)
                    .bind(usd)
                    .bind(tokens)
                    .bind(requests)
                    .bind(now)
                    .execute(&mut *connection)
                    .await?;
            }
            AuditStore::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let mut settled = 0;
                for from in ["reserved", "reclaimed"] {
                    // Only a reservation reclaimed meanwhile is looked for twice.
                    if settled == held {
                        break;
                    }
                    let ended: Vec<(String, i64, i64, i64)> = sqlx::query_as(
                        "UPDATE budget_charges SET state = $2, settled_at = $3, \
                         charged = CASE unit WHEN 'usd' THEN $4 WHEN 'requests' THEN $7 ELSE $5 END \
                         WHERE call_id = $1 AND state = $6 \
                         RETURNING budget, period_start, reserved, charged",
                    )
                    .bind(call_id)
                    .bind(state)
                    .bind(now)
                    .bind(usd)
                    .bind(tokens)
                    .bind(from)
                    .bind(requests)
                    .fetch_all(&mut *tx)
                    .await?;
                    settled += ended.len();
                    for (budget, period_start, reserved, charged) in ended {
                        // A reclaimed reservation no longer counts as reserved.
                        let unreserved = if from == "reserved" { reserved } else { 0 };
                        sqlx::query(
                            "UPDATE budget_periods SET reserved = reserved - $3, \
                             spent = spent + $4 WHERE budget = $1 AND period_start = $2",
                        )
                        .bind(&budget)
                        .bind(period_start)
                        .bind(unreserved)
                        .bind(charged)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Releases every reservation that expired unsettled (its host died or
    /// lost the database); returns how many.
    pub async fn reclaim(&self) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        // A read first: most of the time there is nothing to reclaim, and
        // the transaction would take SQLite's write lock for nothing.
        let expired: Option<(i64,)> = on_pool!(&self.store, pool => {
            sqlx::query_as(
                "SELECT expires_at FROM budget_charges \
                 WHERE state = 'reserved' AND expires_at < $1 LIMIT 1",
            )
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        if expired.is_none() {
            return Ok(0);
        }
        in_transaction!(&self.store, tx => async {
            let expired: Vec<(String, i64, i64)> = sqlx::query_as(
                "UPDATE budget_charges SET state = 'reclaimed', settled_at = $1 \
                 WHERE state = 'reserved' AND expires_at < $1 \
                 RETURNING budget, period_start, reserved",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            // Period rows in budget name order, as reservations lock them.
            let mut unreserved = std::collections::BTreeMap::<(String, i64), i64>::new();
            for (budget, period_start, reserved) in &expired {
                *unreserved.entry((budget.clone(), *period_start)).or_default() += reserved;
            }
            for ((budget, period_start), reserved) in &unreserved {
                sqlx::query(
                    "UPDATE budget_periods SET reserved = reserved - $3 \
                     WHERE budget = $1 AND period_start = $2",
                )
                .bind(budget)
                .bind(period_start)
                .bind(reserved)
                .execute(&mut *tx)
                .await?;
            }
            Ok::<u64, sqlx::Error>(expired.len() as u64)
        }
        .await)
    }

    /// Deletes the counts and settled entries of rate-limit minutes older
    /// than an hour: a rate limit keeps no history beyond that.
    pub async fn prune(&self) -> Result<(), sqlx::Error> {
        let before = now_ms() - MINUTES_KEPT_MS;
        on_pool!(&self.store, pool => {
            sqlx::query(
                "DELETE FROM budget_periods WHERE period_start < $1 \
                 AND budget IN (SELECT name FROM budgets WHERE period = 'minute')",
            )
            .bind(before)
            .execute(pool)
            .await?;
            sqlx::query(
                "DELETE FROM budget_charges WHERE reserved_at < $1 AND state <> 'reserved' \
                 AND budget IN (SELECT name FROM budgets WHERE period = 'minute')",
            )
            .bind(before)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Sets a budget's limit at run time, or creates a budget (then its
    /// period is required); `by` is who asked. The change is kept in the
    /// budget's history.
    pub async fn set(
        &self,
        name: &str,
        change: BudgetChange,
        by: &str,
    ) -> Result<Result<BudgetStatus, String>, sqlx::Error> {
        self.ready().await?;
        let count =
            |field: &str, n: u64| i64::try_from(n).map_err(|_| format!("{field}: is too large"));
        let limit = match (change.limit_usd, change.limit_tokens, change.limit_requests) {
            (Some(usd), None, None) => micro_usd(usd)
                .map(|limit| (Unit::Usd, limit))
                .map_err(|m| format!("limit_usd: {m}")),
            (None, Some(n), None) => count("limit_tokens", n).map(|limit| (Unit::Tokens, limit)),
            (None, None, Some(n)) => {
                count("limit_requests", n).map(|limit| (Unit::Requests, limit))
            }
            _ => Err("set exactly one of `limit_usd`, `limit_tokens` or `limit_requests`".into()),
        };
        let (unit, limit) = match limit {
            Ok(limit) => limit,
            Err(message) => return Ok(Err(message)),
        };
        let now = now_ms();
        let outcome = in_transaction!(&self.store, tx => async {
            let existing: Option<(String, String, i64)> =
                sqlx::query_as("SELECT unit, period, amount FROM budgets WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            match existing {
                Some((existing_unit, _, previous)) => {
                    if existing_unit != unit.as_str() {
                        return Ok(Err(format!(
                            "budget `{name}` counts {existing_unit}; set `limit_{existing_unit}`"
                        )));
                    }
                    let scoped = [&change.principal, &change.tenant, &change.team, &change.model]
                        .iter()
                        .any(|field| field.is_some());
                    if scoped || change.period.is_some() {
                        return Ok(Err(format!(
                            "budget `{name}` exists: only its limit can change (create a new \
                             budget for another scope or period)"
                        )));
                    }
                    sqlx::query(
                        "UPDATE budgets SET amount = $2, updated_at = $3, updated_by = $4 \
                         WHERE name = $1",
                    )
                    .bind(name)
                    .bind(limit)
                    .bind(now)
                    .bind(by)
                    .execute(&mut *tx)
                    .await?;
                    record_change!(&mut *tx, name, now, by, Some(limit), Some(previous))?;
                }
                None => {
                    let Some(period) = change.period else {
                        return Ok(Err(format!(
                            "budget `{name}` is new: give its `period` (daily, monthly, total, \
                             or minute for a rate limit)"
                        )));
                    };
                    if unit == Unit::Requests && period != Period::Minute {
                        return Ok(Err("a limit of requests is a rate limit: its period is `minute`".into()));
                    }
                    if let Err(m) = crate::manifest::validate_name(name) {
                        return Ok(Err(m));
                    }
                    let scope = Scope::checked(
                        change.principal.clone(),
                        change.tenant.clone(),
                        change.team.clone(),
                        change.model.clone(),
                    );
                    let budget = match scope {
                        Ok(scope) => Budget { name: name.to_string(), scope, unit, period, limit },
                        Err((field, message)) => return Ok(Err(format!("{field}: {message}"))),
                    };
                    sqlx::query(
                        "INSERT INTO budgets (name, principal, tenant, team, model, unit, period, \
                         amount, updated_at, updated_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(name)
                    .bind(&budget.scope.principal)
                    .bind(&budget.scope.tenant)
                    .bind(&budget.scope.team)
                    .bind(&budget.scope.model)
                    .bind(budget.unit.as_str())
                    .bind(budget.period.as_str())
                    .bind(limit)
                    .bind(now)
                    .bind(by)
                    .execute(&mut *tx)
                    .await?;
                    record_change!(&mut *tx, name, now, by, Some(limit), None::<i64>)?;
                }
            }
            Ok::<Result<(), String>, sqlx::Error>(Ok(()))
        }
        .await)?;
        if let Err(message) = outcome {
            return Ok(Err(message));
        }
        let status = self
            .list()
            .await?
            .into_iter()
            .find(|s| s.budget.name == name);
        Ok(status.ok_or_else(|| format!("budget `{name}` vanished while it was set")))
    }

    /// A budget's limit changes and its most recent `limit` ledger entries.
    pub async fn history(&self, name: &str, limit: i64) -> Result<History, sqlx::Error> {
        self.ready().await?;
        let limit = limit.clamp(1, HISTORY_MAX);
        on_pool!(&self.store, pool => {
            let changes: Vec<(i64, String, Option<i64>, Option<i64>)> = sqlx::query_as(
                "SELECT at, by_whom, amount, previous FROM budget_changes \
                 WHERE budget = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(name)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            #[allow(clippy::type_complexity, reason = "one row's columns")]
            let entries: Vec<(String, i64, i64, Option<i64>, String, i64, Option<i64>)> = sqlx::query_as(
                "SELECT call_id, period_start, reserved, charged, state, reserved_at, settled_at \
                 FROM budget_charges WHERE budget = $1 ORDER BY reserved_at DESC, call_id LIMIT $2",
            )
            .bind(name)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(History {
                changes: changes
                    .into_iter()
                    .map(|(at, by, limit, previous)| Change { at, by, limit, previous })
                    .collect(),
                entries: entries
                    .into_iter()
                    .map(|(call_id, period_start, reserved, charged, state, reserved_at, settled_at)| Entry {
                        call_id,
                        period_start,
                        reserved,
                        charged,
                        state,
                        reserved_at,
                        settled_at,
                    })
                    .collect(),
            })
        })
    }
}

/// One reservation asked for.
struct Ask<'a> {
    call_id: &'a str,
    who: Who<'a>,
    worst: Amounts,
    priced: bool,
    now: DateTime<Utc>,
    expires_at: i64,
}

/// A reservation on PostgreSQL: one statement (`warden_reserve`, migrations
/// 0017 and 0019), so a budget's row is locked for no round trip. The budgets held.
async fn reserve_on_postgres(
    connection: &mut sqlx::PgConnection,
    ask: &Ask<'_>,
) -> Result<Vec<String>, Refusal> {
    let [day, month, minute] = starts(ask.now);
    #[allow(clippy::type_complexity, reason = "one row's columns")]
    let rows: Vec<(
        String,
        Option<String>,
        Option<String>,
        String,
        Option<i64>,
        Option<i64>,
        i64,
    )> = sqlx::query_as(
        "SELECT o_budget, o_refusal, o_period, o_unit, o_limit, o_used, o_asked \
             FROM warden_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(ask.call_id)
    .bind(ask.who.principal)
    .bind(ask.who.tenant)
    .bind(ask.who.team)
    .bind(ask.who.model)
    .bind(ask.worst.of(Unit::Usd))
    .bind(ask.worst.of(Unit::Tokens))
    .bind(ask.worst.of(Unit::Requests))
    .bind(ask.priced)
    .bind(day)
    .bind(month)
    .bind(minute)
    .bind(ask.now.timestamp_millis())
    .bind(ask.expires_at)
    .fetch_all(connection)
    .await?;
    let refused = rows.iter().find(|row| row.1.is_some());
    if let Some((budget, Some(refusal), period, unit, limit, used, asked)) = refused {
        if refusal == "unpriced" {
            return Err(Refusal::Unpriced {
                budget: budget.clone(),
            });
        }
        let period = period
            .as_deref()
            .and_then(Period::parse)
            .unwrap_or(Period::Total);
        return Err(Refusal::Exceeded {
            budget: budget.clone(),
            unit: Unit::parse(unit).unwrap_or(Unit::Tokens),
            period,
            limit: limit.unwrap_or(0),
            used: used.unwrap_or(0),
            asked: *asked,
            period_end: period.bounds(ask.now).1,
        });
    }
    Ok(rows.into_iter().map(|row| row.0).collect())
}

/// A reservation in a transaction (SQLite, which holds its write lock):
/// each applicable budget's period row takes the reservation only if it
/// fits; the first that refuses rolls the whole back. The budgets held.
async fn reserve_in(
    tx: &mut sqlx::SqliteConnection,
    ask: &Ask<'_>,
) -> Result<Vec<String>, Refusal> {
    let now = ask.now;
    let [day, month, minute] = starts(now);
    let rows = sqlx::query(APPLICABLE)
        .bind(ask.who.principal)
        .bind(ask.who.tenant)
        .bind(ask.who.team)
        .bind(ask.who.model)
        .bind(day)
        .bind(month)
        .bind(minute)
        .fetch_all(&mut *tx)
        .await?;
    let budgets = rows
        .into_iter()
        .map(|row| Ok(status_row!(row, now)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    if let Some(money) = budgets
        .iter()
        .find(|s| s.budget.unit == Unit::Usd && !ask.priced)
    {
        return Err(Refusal::Unpriced {
            budget: money.budget.name.clone(),
        });
    }
    for status in &budgets {
        let budget = &status.budget;
        let asked = ask.worst.of(budget.unit);
        if asked == 0 {
            continue;
        }
        let exceeded = |used: i64| Refusal::Exceeded {
            budget: budget.name.clone(),
            unit: budget.unit,
            period: budget.period,
            limit: budget.limit,
            used,
            asked,
            period_end: status.period_end,
        };
        if asked > budget.limit {
            return Err(exceeded(status.spent.saturating_add(status.reserved)));
        }
        let fitted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO budget_periods (budget, period_start, spent, reserved) \
             VALUES ($1, $2, 0, $3) \
             ON CONFLICT (budget, period_start) DO UPDATE \
             SET reserved = budget_periods.reserved + excluded.reserved \
             WHERE budget_periods.spent + budget_periods.reserved + excluded.reserved <= $4 \
             RETURNING reserved",
        )
        .bind(&budget.name)
        .bind(status.period_start)
        .bind(asked)
        .bind(budget.limit)
        .fetch_optional(&mut *tx)
        .await?;
        if fitted.is_none() {
            return Err(exceeded(status.spent.saturating_add(status.reserved)));
        }
        sqlx::query(
            "INSERT INTO budget_charges (call_id, budget, period_start, unit, reserved, \
             state, reserved_at, expires_at) VALUES ($1, $2, $3, $4, $5, 'reserved', $6, $7)",
        )
        .bind(ask.call_id)
        .bind(&budget.name)
        .bind(status.period_start)
        .bind(budget.unit.as_str())
        .bind(asked)
        .bind(now.timestamp_millis())
        .bind(ask.expires_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(budgets
        .into_iter()
        .filter(|s| ask.worst.of(s.budget.unit) > 0)
        .map(|s| s.budget.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ledger(budgets: Vec<Budget>) -> (Ledger, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let store = AuditStore::connect(
            &url,
            Duration::from_secs(5),
            crate::audit::Durability::Flush,
        )
        .await
        .unwrap();
        (Ledger::new(store, budgets), dir)
    }

    fn tokens(name: &str, limit: i64) -> Budget {
        Budget {
            name: name.into(),
            scope: Scope {
                tenant: Some("acme".into()),
                ..Scope::default()
            },
            unit: Unit::Tokens,
            period: Period::Daily,
            limit,
        }
    }

    const WHO: Who<'static> = Who {
        principal: "alice",
        tenant: "acme",
        team: None,
        model: Some("fast"),
    };

    fn worst(tokens: u64) -> Amounts {
        Amounts {
            micro_usd: 0,
            tokens,
            requests: 1,
        }
    }

    #[tokio::test]
    async fn reservations_stop_at_the_limit_and_settling_frees_the_difference() {
        let (ledger, _dir) = ledger(vec![tokens("daily", 100)]).await;
        let hour = Duration::from_secs(3600);
        for call in ["a", "b"] {
            let held = ledger.reserve(call, WHO, worst(40), true, hour).await;
            assert_eq!(held.unwrap().unwrap().budgets, ["daily"]);
        }
        let refused = ledger.reserve("c", WHO, worst(40), true, hour).await;
        assert!(
            matches!(
                refused,
                Err(Refusal::Exceeded {
                    used: 80,
                    asked: 40,
                    limit: 100,
                    ..
                })
            ),
            "{refused:?}"
        );
        ledger
            .settle("a", 1, Settlement::Charged(worst(10)))
            .await
            .unwrap();
        ledger.settle("b", 1, Settlement::Released).await.unwrap();
        // Settling twice changes nothing.
        ledger
            .settle("a", 1, Settlement::Charged(worst(10)))
            .await
            .unwrap();
        let status = &ledger.applicable(WHO).await.unwrap()[0];
        assert_eq!(
            (status.spent, status.reserved, status.remaining),
            (10, 0, 90)
        );
        assert!(
            ledger
                .reserve("c", WHO, worst(90), true, hour)
                .await
                .unwrap()
                .is_some()
        );
        let other = Who {
            tenant: "globex",
            ..WHO
        };
        assert!(
            ledger
                .reserve("d", other, worst(1000), true, hour)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn expired_reservations_are_reclaimed_and_a_late_settlement_still_charges() {
        let (ledger, _dir) = ledger(vec![tokens("daily", 100)]).await;
        ledger
            .reserve("a", WHO, worst(60), true, Duration::ZERO)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(ledger.reclaim().await.unwrap(), 1);
        assert_eq!(ledger.reclaim().await.unwrap(), 0);
        assert_eq!(ledger.applicable(WHO).await.unwrap()[0].reserved, 0);
        ledger
            .settle("a", 1, Settlement::Charged(worst(7)))
            .await
            .unwrap();
        let status = &ledger.applicable(WHO).await.unwrap()[0];
        assert_eq!((status.spent, status.reserved), (7, 0));
        let history = ledger.history("daily", 10).await.unwrap();
        assert_eq!(history.entries[0].state, "settled");
        assert_eq!(history.entries[0].charged, Some(7));
    }

    #[tokio::test]
    async fn a_money_budget_refuses_a_model_without_prices() {
        let usd = Budget {
            unit: Unit::Usd,
            ..tokens("money", 1_000_000)
        };
        let (ledger, _dir) = ledger(vec![usd]).await;
        let refused = ledger
            .reserve("a", WHO, worst(1), false, Duration::from_secs(60))
            .await;
        assert_eq!(
            refused,
            Err(Refusal::Unpriced {
                budget: "money".into()
            })
        );
    }

    #[tokio::test]
    async fn a_tool_call_holds_only_the_money_budgets_that_name_no_model() {
        let usd = |name: &str, model: Option<&str>| Budget {
            unit: Unit::Usd,
            scope: Scope {
                model: model.map(str::to_string),
                ..Scope::default()
            },
            ..tokens(name, 1_000)
        };
        let (ledger, _dir) = ledger(vec![
            usd("all-money", None),
            usd("model-money", Some("fast")),
            tokens("all-tokens", 10),
        ])
        .await;
        let tool = Who { model: None, ..WHO };
        let price = Amounts {
            micro_usd: 400,
            ..Amounts::default()
        };
        let held = ledger
            .reserve("t1", tool, price, true, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(held.budgets, ["all-money"]);
        ledger
            .reserve("t2", tool, price, true, Duration::from_secs(60))
            .await
            .unwrap();
        let third = ledger
            .reserve("t3", tool, price, true, Duration::from_secs(60))
            .await;
        assert!(
            matches!(&third, Err(Refusal::Exceeded { budget, used: 800, asked: 400, .. }) if budget == "all-money"),
            "{third:?}"
        );
        ledger
            .settle("t1", 1, Settlement::Charged(price))
            .await
            .unwrap();
        let statuses = ledger.applicable(tool).await.unwrap();
        let names: Vec<_> = statuses.iter().map(|s| s.budget.name.as_str()).collect();
        assert_eq!(names, ["all-money", "all-tokens"]);
        assert_eq!((statuses[0].spent, statuses[0].reserved), (400, 400));
        assert_eq!((statuses[1].spent, statuses[1].reserved), (0, 0));
    }

    #[test]
    fn a_tool_pays_the_highest_price_of_the_globs_that_match_it() {
        let prices = ToolPrices::new([
            ("search.*".to_string(), 0.002),
            ("search.deep".to_string(), 0.05),
            ("*".to_string(), 0.0001),
        ])
        .unwrap();
        assert_eq!(prices.of("search.deep"), Some(50_000));
        assert_eq!(prices.of("search.web"), Some(2_000));
        assert_eq!(prices.of("files.read"), Some(100));
        assert_eq!(ToolPrices::default().of("files.read"), None);
        assert!(ToolPrices::new([("x.*".to_string(), -1.0)]).is_err());
        assert!(ToolPrices::new([("x.*".to_string(), 0.0000001)]).is_err());
    }

    #[tokio::test]
    async fn config_sets_a_limit_until_it_changes_and_run_time_changes_stay_in_between() {
        let (ledger, dir) = ledger(vec![tokens("daily", 100)]).await;
        let change = BudgetChange {
            principal: None,
            tenant: None,
            team: None,
            model: None,
            limit_usd: None,
            limit_tokens: Some(500),
            limit_requests: None,
            period: None,
        };
        let set = ledger
            .set("daily", change.clone(), "root")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(set.budget.limit, 500);
        let wrong_unit = BudgetChange {
            limit_usd: Some(1.0),
            limit_tokens: None,
            ..change.clone()
        };
        assert!(
            ledger
                .set("daily", wrong_unit, "root")
                .await
                .unwrap()
                .is_err()
        );
        let no_period = ledger.set("new", change.clone(), "root").await.unwrap();
        assert!(
            no_period.unwrap_err().contains("period"),
            "asks for a period"
        );

        // The same config again keeps the run-time limit; a changed one wins.
        let store = ledger.store.clone();
        let again = Ledger::new(store.clone(), vec![tokens("daily", 100)]);
        assert_eq!(again.list().await.unwrap()[0].budget.limit, 500);
        let changed = Ledger::new(store.clone(), vec![tokens("daily", 200)]);
        assert_eq!(changed.list().await.unwrap()[0].budget.limit, 200);
        // A budget config no longer declares is gone.
        let removed = Ledger::new(store, Vec::new());
        assert!(removed.list().await.unwrap().is_empty());
        let history = removed.history("daily", 10).await.unwrap();
        let by: Vec<_> = history
            .changes
            .iter()
            .map(|c| (c.by.as_str(), c.limit))
            .collect();
        assert_eq!(
            by,
            [
                ("config", None),
                ("config", Some(200)),
                ("root", Some(500)),
                ("config", Some(100))
            ]
        );
        drop(dir);
    }

    #[test]
    fn periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let (day, day_end) = Period::Daily.bounds(t);
        assert_eq!(
            day,
            Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(day_end, Some(day + 86_400_000));
        let (month, month_end) = Period::Monthly.bounds(t);
        assert_eq!(
            month,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            month_end,
            Some(
                Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                    .unwrap()
                    .timestamp_millis()
            )
        );
        assert_eq!(Period::Total.bounds(t), (0, None));
        let (minute, minute_end) = Period::Minute.bounds(t);
        assert_eq!(
            minute,
            Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(minute_end, Some(minute + 60_000));
    }

    #[test]
    fn a_rate_limit_is_a_budget_over_a_minute() {
        let section: RateLimitSection =
            toml::from_str("tenant = \"acme\"\nrequests_per_minute = 60").unwrap();
        let limit = section.budget("acme-rpm").unwrap();
        assert_eq!(
            (limit.unit, limit.period, limit.limit),
            (Unit::Requests, Period::Minute, 60)
        );
        let both: RateLimitSection =
            toml::from_str("requests_per_minute = 1\ntokens_per_minute = 1").unwrap();
        assert!(both.budget("x").unwrap_err().1.contains("exactly one"));
        let zero: RateLimitSection = toml::from_str("tokens_per_minute = 0").unwrap();
        assert_eq!(zero.budget("x").unwrap_err().0, "tokens_per_minute");
        assert!(toml::from_str::<RateLimitSection>("per_minute = 1").is_err());
    }

    #[test]
    fn dollars_become_exact_millionths() {
        assert_eq!(micro_usd(12.5), Ok(12_500_000));
        assert_eq!(micro_usd(0.000001), Ok(1));
        assert!(micro_usd(0.0000001).is_err());
        assert!(micro_usd(-1.0).is_err());
        assert!(micro_usd(f64::NAN).is_err());
    }
}
