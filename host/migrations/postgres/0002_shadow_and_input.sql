-- Shadow-mode disagreements and, when configured, the policy input of a call.
ALTER TABLE audit_records ADD COLUMN shadow TEXT;
ALTER TABLE audit_records ADD COLUMN policy_input TEXT;
