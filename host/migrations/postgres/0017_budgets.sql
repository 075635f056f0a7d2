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
    id BIGSERIAL PRIMARY KEY,
    budget TEXT NOT NULL,
    at BIGINT NOT NULL,
    by_whom TEXT NOT NULL,
    amount BIGINT,
    previous BIGINT
);

-- A reservation in one statement (budget.rs): a budget's period row is
-- locked only while this runs, not across round trips, so reservations of
-- one shared budget follow each other closely. Period rows are locked in
-- budget name order (as settlements take them: no deadlock). Returns the
-- budgets held (`o_refusal` null), or one row naming the budget that
-- refused (`o_refusal` 'exceeded' or 'unpriced'), having reserved nothing.
CREATE FUNCTION warden_reserve(
    p_call TEXT, p_principal TEXT, p_tenant TEXT, p_team TEXT, p_model TEXT,
    p_usd BIGINT, p_tokens BIGINT, p_requests BIGINT, p_priced BOOLEAN,
    p_day BIGINT, p_month BIGINT, p_minute BIGINT, p_now BIGINT, p_expires BIGINT
) RETURNS TABLE (
    o_budget TEXT, o_refusal TEXT, o_period TEXT, o_unit TEXT,
    o_limit BIGINT, o_used BIGINT, o_asked BIGINT
) LANGUAGE plpgsql AS $$
DECLARE
    b RECORD;
    v_start BIGINT;
    v_asked BIGINT;
    v_used BIGINT;
    v_names TEXT[] := '{}';
    v_starts BIGINT[] := '{}';
    v_units TEXT[] := '{}';
    v_askeds BIGINT[] := '{}';
BEGIN
    IF NOT p_priced THEN
        RETURN QUERY SELECT g.name, 'unpriced'::TEXT, g.period, g.unit, g.amount, 0::BIGINT, 0::BIGINT
            FROM budgets g
            WHERE g.unit = 'usd'
              AND (g.principal IS NULL OR g.principal = p_principal)
              AND (g.tenant IS NULL OR g.tenant = p_tenant)
              AND (g.team IS NULL OR g.team = p_team)
              AND (g.model IS NULL OR g.model = p_model)
            ORDER BY g.name LIMIT 1;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    FOR b IN
        SELECT g.name, g.unit, g.period, g.amount FROM budgets g
        WHERE (g.principal IS NULL OR g.principal = p_principal)
          AND (g.tenant IS NULL OR g.tenant = p_tenant)
          AND (g.team IS NULL OR g.team = p_team)
          AND (g.model IS NULL OR g.model = p_model)
        ORDER BY g.name
    LOOP
        v_start := CASE b.period WHEN 'daily' THEN p_day WHEN 'monthly' THEN p_month
            WHEN 'minute' THEN p_minute ELSE 0 END;
        v_asked := CASE b.unit WHEN 'usd' THEN p_usd WHEN 'requests' THEN p_requests ELSE p_tokens END;
        IF v_asked <= b.amount THEN
            INSERT INTO budget_periods AS p (budget, period_start, spent, reserved)
            VALUES (b.name, v_start, 0, v_asked)
            ON CONFLICT (budget, period_start) DO UPDATE
            SET reserved = p.reserved + excluded.reserved
            WHERE p.spent + p.reserved + excluded.reserved <= b.amount;
        END IF;
        IF v_asked > b.amount OR NOT FOUND THEN
            SELECT p.spent + p.reserved INTO v_used FROM budget_periods p
            WHERE p.budget = b.name AND p.period_start = v_start;
            -- Undo what this call reserved so far (its rows are still locked).
            UPDATE budget_periods p SET reserved = p.reserved - h.asked
            FROM unnest(v_names, v_starts, v_askeds) AS h(name, start, asked)
            WHERE p.budget = h.name AND p.period_start = h.start;
            RETURN QUERY SELECT b.name, 'exceeded'::TEXT, b.period, b.unit, b.amount,
                COALESCE(v_used, 0::BIGINT), v_asked;
            RETURN;
        END IF;
        v_names := v_names || b.name;
        v_starts := v_starts || v_start;
        v_units := v_units || b.unit;
        v_askeds := v_askeds || v_asked;
    END LOOP;
    INSERT INTO budget_charges (call_id, budget, period_start, unit, reserved, state, reserved_at, expires_at)
    SELECT p_call, h.name, h.start, h.unit, h.asked, 'reserved', p_now, p_expires
    FROM unnest(v_names, v_starts, v_units, v_askeds) AS h(name, start, unit, asked);
    RETURN QUERY SELECT h.name, NULL::TEXT, NULL::TEXT, h.unit, NULL::BIGINT, NULL::BIGINT, h.asked
        FROM unnest(v_names, v_units, v_askeds) AS h(name, unit, asked);
END $$;

-- A settlement in one statement: the call's reservations end as `p_state`
-- (settled or released) with the amount charged in each unit, also those a
-- host reclaimed meanwhile (then only the charge moves); period rows in
-- budget name order. Returns how many reservations ended.
CREATE FUNCTION warden_settle(
    p_call TEXT, p_state TEXT, p_usd BIGINT, p_tokens BIGINT, p_requests BIGINT, p_now BIGINT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
    v_charged BIGINT;
    v_ended BIGINT := 0;
BEGIN
    FOR c IN
        SELECT h.budget, h.period_start, h.unit, h.reserved, h.state FROM budget_charges h
        WHERE h.call_id = p_call AND h.state IN ('reserved', 'reclaimed')
        ORDER BY h.budget
        FOR UPDATE
    LOOP
        v_charged := CASE c.unit WHEN 'usd' THEN p_usd WHEN 'requests' THEN p_requests ELSE p_tokens END;
        UPDATE budget_charges h SET state = p_state, settled_at = p_now, charged = v_charged
        WHERE h.call_id = p_call AND h.budget = c.budget;
        UPDATE budget_periods p
        SET reserved = p.reserved - CASE c.state WHEN 'reserved' THEN c.reserved ELSE 0 END,
            spent = p.spent + v_charged
        WHERE p.budget = c.budget AND p.period_start = c.period_start;
        v_ended := v_ended + 1;
    END LOOP;
    RETURN v_ended;
END $$;
