-- Per-tenant keys (audit/sealing.rs): one keys the digests of completions,
-- so equal prompts of different tenants cannot be matched; the other seals
-- the text policy obliges keeping. Deleting a tenant's row erases that text.
CREATE TABLE tenant_keys (
    tenant TEXT PRIMARY KEY,
    digest_key BLOB NOT NULL,
    text_key BLOB NOT NULL
);
-- Text kept for a completion, sealed under its tenant's key (base64 of
-- nonce and ciphertext), when policy obliged keeping it.
ALTER TABLE audit_records ADD COLUMN sealed_text TEXT;
