-- api_tokens: ReplacingMergeTree(updated_at) ORDER BY token_id, no PARTITION BY, no TTL: one row per token, revoking writes a newer row (revoked_at set) that replaces the old one, tokens are looked up by token_id (the token's public prefix), then the secret is checked against hash, tiny, read with FINAL.
CREATE TABLE IF NOT EXISTS api_tokens
(
    token_id   String COMMENT 'public identifier, part of the token',
    name       String DEFAULT '',
    scope      LowCardinality(String) COMMENT 'read | ingest | admin',
    hash       String COMMENT 'SHA-256 of the secret, hex, never the secret',
    created_by String DEFAULT '',
    created_at DateTime64(3, 'UTC') DEFAULT now64(3),
    expires_at Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL = does not expire',
    revoked_at Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL = active',
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the newest row per token_id wins'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY token_id
COMMENT 'API tokens (hashes only)'
