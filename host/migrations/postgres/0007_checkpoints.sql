-- Signed checkpoints of every chain head (see docs/audit.md).
CREATE TABLE audit_checkpoints (
    id          BIGSERIAL PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    body        TEXT NOT NULL,
    signature   TEXT NOT NULL,
    public_key  TEXT NOT NULL
);
