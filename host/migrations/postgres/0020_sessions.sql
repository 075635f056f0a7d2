-- Sessions, their labels, labels sticking to a principal, outputs kept for
-- citation checks and usage counters, shared by every replica
-- ([sessions] store = "database"; see host/src/session.rs).

-- Orders sessions by last use (least recently used is evicted first).
CREATE SEQUENCE warden_session_clock;

CREATE TABLE warden_sessions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    principal TEXT NOT NULL,
    last_used BIGINT NOT NULL,
    opened_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX warden_sessions_owner ON warden_sessions (tenant, principal, last_used);

CREATE TABLE warden_session_labels (
    session TEXT NOT NULL REFERENCES warden_sessions (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    PRIMARY KEY (session, label)
);

-- Labels sticking to a principal until `until`.
CREATE TABLE warden_principal_labels (
    tenant TEXT NOT NULL,
    principal TEXT NOT NULL,
    label TEXT NOT NULL,
    until TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, principal, label)
);

-- Outputs returned in a session, oldest first; `content` is dropped (the
-- digest kept) past the session's source budget.
CREATE TABLE warden_session_sources (
    session TEXT NOT NULL REFERENCES warden_sessions (id) ON DELETE CASCADE,
    seq BIGSERIAL,
    call_id TEXT NOT NULL,
    target TEXT NOT NULL,
    locator TEXT,
    digest TEXT NOT NULL,
    content TEXT,
    PRIMARY KEY (session, seq)
);

-- Calls per principal; the row with principal '' counts the tenant's.
CREATE TABLE warden_usage_counters (
    tenant TEXT NOT NULL,
    principal TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (tenant, principal)
);

-- Counts one call by (p_tenant, p_principal) in p_session (NULL: none) and
-- returns what policy sees of its context. `live` is false, and nothing is
-- counted, when p_session is not an open session of that principal.
CREATE FUNCTION warden_begin_call(p_tenant TEXT, p_principal TEXT, p_session TEXT)
RETURNS TABLE (
    live BOOLEAN,
    session_labels TEXT[],
    principal_labels TEXT[],
    tenant_calls BIGINT,
    principal_calls BIGINT
)
LANGUAGE plpgsql AS $$
BEGIN
    session_labels := '{}';
    IF p_session IS NOT NULL THEN
        UPDATE warden_sessions SET last_used = nextval('warden_session_clock')
         WHERE id = p_session AND tenant = p_tenant AND principal = p_principal;
        IF NOT FOUND THEN
            live := FALSE;
            RETURN NEXT;
            RETURN;
        END IF;
        SELECT coalesce(array_agg(l.label ORDER BY l.label), '{}') INTO session_labels
          FROM warden_session_labels l WHERE l.session = p_session;
    END IF;
    live := TRUE;
    INSERT INTO warden_usage_counters AS u (tenant, principal, calls)
    VALUES (p_tenant, p_principal, 1)
    ON CONFLICT (tenant, principal) DO UPDATE SET calls = u.calls + 1
    RETURNING u.calls INTO principal_calls;
    INSERT INTO warden_usage_counters AS u (tenant, principal, calls)
    VALUES (p_tenant, '', 1)
    ON CONFLICT (tenant, principal) DO UPDATE SET calls = u.calls + 1
    RETURNING u.calls INTO tenant_calls;
    SELECT coalesce(array_agg(p.label ORDER BY p.label), '{}') INTO principal_labels
      FROM warden_principal_labels p
     WHERE p.tenant = p_tenant AND p.principal = p_principal AND p.until > now();
    RETURN NEXT;
END
$$;
