-- Tool calls carry prices (`[tool_prices]`): what any call reserved and was
-- charged is recorded in `spend` (JSON), tool call or completion.
ALTER TABLE audit_records ADD COLUMN spend TEXT;
