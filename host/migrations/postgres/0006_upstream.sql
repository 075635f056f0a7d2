-- Gateway calls record the upstream MCP server that served them.
ALTER TABLE audit_records ADD COLUMN upstream TEXT;
