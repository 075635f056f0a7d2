-- Key-value state of plugins granted `kv` (capabilities/kv.rs): one row per
-- (plugin, tenant, key); `bytes` is the key's length plus the value's, what
-- the quota counts.
CREATE TABLE kv_entries (
    plugin TEXT NOT NULL,
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (plugin, tenant, key)
);
