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
