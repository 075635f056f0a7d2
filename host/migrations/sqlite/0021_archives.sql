-- Where each chain's records in the database begin once older ones were
-- archived (`warden audit archive`): the seq and hash of its last archived
-- record (-1 and the genesis hash while nothing was).
ALTER TABLE audit_chains ADD COLUMN archived_seq BIGINT NOT NULL DEFAULT -1;
ALTER TABLE audit_chains ADD COLUMN archived_hash TEXT NOT NULL
    DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';

-- Every archive written: which records left the database, into which file
-- (its SHA-256), and each chain's span in it (JSON).
CREATE TABLE audit_archives (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    segment TEXT NOT NULL,
    archived_at TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    records BIGINT NOT NULL,
    chains TEXT NOT NULL
);
