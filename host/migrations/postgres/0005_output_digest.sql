-- Outputs, like arguments, are recorded as digests.
ALTER TABLE audit_records ADD COLUMN output_digest TEXT;
