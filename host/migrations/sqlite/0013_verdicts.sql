-- Each verifier's verdict on the call's input and output (JSON list of
-- {stage, verifier, sha256, verdict, advisory, findings, error}); NULL when
-- no verifier applied.
ALTER TABLE audit_records ADD COLUMN verdicts TEXT;
