-- What each decision point decided (JSON list of {stage, decision, reasons}),
-- in the order they ran; NULL in records written before stages were recorded.
ALTER TABLE audit_records ADD COLUMN decisions JSONB;
