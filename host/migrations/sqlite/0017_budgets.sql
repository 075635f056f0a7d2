-- The spend ledger (budget.rs). Amounts are integers: millionths of a US
-- dollar for `usd` budgets, tokens or requests for `tokens` and `requests`
-- ones (rate limits are budgets over a minute). Times are Unix milliseconds;
-- periods start at UTC midnight, the first of the month or the minute.

-- Budgets, from config (`config_amount`: the limit config last set, so an
-- unchanged config keeps a limit changed at run time) or set at run time.
CREATE TABLE budgets (
    name TEXT PRIMARY KEY,
    principal TEXT,
    tenant TEXT,
    team TEXT,
    model TEXT,
    unit TEXT NOT NULL,
    period TEXT NOT NULL,
    amount BIGINT NOT NULL,
    config_amount BIGINT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

-- Spent and reserved per budget and period: the row a reservation locks.
CREATE TABLE budget_periods (
    budget TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    spent BIGINT NOT NULL,
    reserved BIGINT NOT NULL,
    PRIMARY KEY (budget, period_start)
);

-- One row per call and budget: reserved before the call, then settled,
-- released, or reclaimed once `expires_at` passed with the host gone.
CREATE TABLE budget_charges (
    call_id TEXT NOT NULL,
    budget TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    unit TEXT NOT NULL,
    reserved BIGINT NOT NULL,
    charged BIGINT,
    state TEXT NOT NULL,
    reserved_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    settled_at BIGINT,
    PRIMARY KEY (call_id, budget)
);
CREATE INDEX budget_charges_open ON budget_charges (expires_at) WHERE state = 'reserved';
CREATE INDEX budget_charges_by_budget ON budget_charges (budget, reserved_at);

-- Every change of a budget's limit: who, when, from what to what.
CREATE TABLE budget_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    budget TEXT NOT NULL,
    at BIGINT NOT NULL,
    by_whom TEXT NOT NULL,
    amount BIGINT,
    previous BIGINT
);
