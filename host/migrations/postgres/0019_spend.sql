-- Tool calls carry prices (`[tool_prices]`): what any call reserved and was
-- charged is recorded in `spend` (JSON), tool call or completion.
ALTER TABLE audit_records ADD COLUMN spend TEXT;

-- A budget a call asks nothing of is not held by it: a priced tool call
-- (no tokens, no model request) holds money budgets only. Otherwise as in
-- 0017.
CREATE OR REPLACE FUNCTION warden_reserve(
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
        IF v_asked = 0 THEN
            CONTINUE;
        END IF;
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
