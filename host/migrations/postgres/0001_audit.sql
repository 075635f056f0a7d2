-- One hash chain per host process; records are appended in sequence.
CREATE TABLE audit_chains (
    chain_id    TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    head_seq    BIGINT NOT NULL,
    head_hash   TEXT NOT NULL
);

CREATE TABLE audit_records (
    id             BIGSERIAL PRIMARY KEY,
    chain_id       TEXT NOT NULL REFERENCES audit_chains (chain_id),
    seq            BIGINT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    call_id        TEXT NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    principal      TEXT NOT NULL,
    tenant         TEXT NOT NULL,
    session        TEXT,
    tool           TEXT NOT NULL,
    plugin         TEXT,
    plugin_sha256  TEXT,
    policy_hash    TEXT NOT NULL,
    decision       TEXT NOT NULL,
    reasons        JSONB NOT NULL,
    args_digest    TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    error          TEXT,
    duration_us    BIGINT NOT NULL,
    UNIQUE (chain_id, seq)
);

CREATE INDEX audit_records_recorded_at ON audit_records (recorded_at);
CREATE INDEX audit_records_principal ON audit_records (principal, recorded_at);
CREATE INDEX audit_records_tool ON audit_records (tool, recorded_at);
