-- What the sandbox refused a call (JSON list of strings), even when the plugin
-- swallowed the refusal; NULL when nothing was refused.
ALTER TABLE audit_records ADD COLUMN refusals JSONB;
