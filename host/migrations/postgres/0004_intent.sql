-- Side-effecting calls get an intent record, committed before the tool runs.
ALTER TABLE audit_records ADD COLUMN intent BOOLEAN NOT NULL DEFAULT FALSE;
