-- The response cache (gateway/cache.rs): completions of deterministic
-- requests, per tenant. `key` is an HMAC under the tenant's digest key, so
-- equal requests of different tenants never share an entry; `sealed` is the
-- completion sealed under the tenant's text key (erased with the tenant).
CREATE TABLE response_cache (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    model TEXT NOT NULL,
    sealed TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX response_cache_age ON response_cache (tenant, created_at);
