-- The audit table, partitioned by month of `recorded_at` (native range
-- partitioning; see docs/audit.md "Retention"): `audit_records_YYYY_MM`
-- holds that month. A trail already recorded becomes one partition,
-- `audit_records_before_YYYY_MM`, holding everything before the month after
-- its newest record: attached, not copied, so upgrading a large trail
-- rewrites no row. audit/partitions.rs creates the months ahead; rows no
-- partition takes land in `audit_records_default`, so a missing month never
-- denies a call. `warden audit archive` exports old partitions and drops them.
--
-- A unique constraint on a partitioned table must contain the partition
-- key, so `(chain_id, seq)` is unique per `recorded_at`: a record replayed
-- from the spool still conflicts with itself, and a second record at the
-- same place in a chain is what `warden audit verify` reports.
DO $$
DECLARE
    v_bound TIMESTAMP;
    v_name TEXT;
BEGIN
    SELECT date_trunc('month', max(recorded_at) AT TIME ZONE 'UTC') + interval '1 month'
        INTO v_bound FROM audit_records;
    v_name := 'audit_records_before_' || to_char(v_bound, 'YYYY_MM');
    ALTER TABLE audit_records RENAME TO audit_records_unpartitioned;
    -- Its primary key becomes `(id, recorded_at)`, built when it is attached.
    ALTER TABLE audit_records_unpartitioned DROP CONSTRAINT audit_records_pkey;
    ALTER TABLE audit_records_unpartitioned
        RENAME CONSTRAINT audit_records_chain_id_seq_key TO audit_records_unpartitioned_chain_seq;

    CREATE TABLE audit_records (LIKE audit_records_unpartitioned INCLUDING DEFAULTS)
        PARTITION BY RANGE (recorded_at);
    ALTER SEQUENCE audit_records_id_seq OWNED BY audit_records.id;
    ALTER TABLE audit_records ADD CONSTRAINT audit_records_pkey PRIMARY KEY (id, recorded_at);
    ALTER TABLE audit_records
        ADD CONSTRAINT audit_records_chain_seq UNIQUE (chain_id, seq, recorded_at);
    ALTER TABLE audit_records ADD CONSTRAINT audit_records_chain
        FOREIGN KEY (chain_id) REFERENCES audit_chains (chain_id);
    -- The same indexes as before, under new names: attaching the old table
    -- adopts its equivalent indexes instead of building them again.
    CREATE INDEX audit_records_by_recorded_at ON audit_records (recorded_at);
    CREATE INDEX audit_records_by_principal ON audit_records (principal, recorded_at);
    CREATE INDEX audit_records_by_tool ON audit_records (tool, recorded_at);
    CREATE INDEX audit_records_by_tenant ON audit_records (tenant, recorded_at);
    CREATE INDEX audit_records_by_decision ON audit_records (decision, recorded_at);
    CREATE INDEX audit_records_by_session ON audit_records (session) WHERE session IS NOT NULL;
    CREATE INDEX audit_records_by_call_id ON audit_records (call_id);

    IF v_bound IS NULL THEN
        DROP TABLE audit_records_unpartitioned;
    ELSE
        EXECUTE format('ALTER TABLE audit_records_unpartitioned RENAME TO %I', v_name);
        EXECUTE format(
            'ALTER TABLE audit_records ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
            v_name, v_bound AT TIME ZONE 'UTC');
    END IF;
    CREATE TABLE audit_records_default PARTITION OF audit_records DEFAULT;
END $$;

-- Where each chain's records in the database begin once older ones were
-- archived: the seq and hash of its last archived record (-1 and the genesis
-- hash while nothing was), so `warden audit verify` starts there.
ALTER TABLE audit_chains ADD COLUMN archived_seq BIGINT NOT NULL DEFAULT -1;
ALTER TABLE audit_chains ADD COLUMN archived_hash TEXT NOT NULL
    DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';

-- Every archive written by `warden audit archive`: which records left the
-- database, into which file (its SHA-256), and each chain's span in it (JSON).
CREATE TABLE audit_archives (
    id BIGSERIAL PRIMARY KEY,
    segment TEXT NOT NULL,
    archived_at TIMESTAMPTZ NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    records BIGINT NOT NULL,
    chains TEXT NOT NULL
);
