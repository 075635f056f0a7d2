-- Completions served by the gateway record their model, usage and cost (JSON).
ALTER TABLE audit_records ADD COLUMN completion TEXT;
