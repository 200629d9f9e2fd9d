-- audit_log: MergeTree ORDER BY (at, actor), PARTITION BY toYYYYMM(at), TTL 2 years: append-only, never deduplicated (two identical actions are two events), read newest first over a time range, kept 2 years, then whole monthly parts are dropped (ttl_only_drop_parts).
CREATE TABLE IF NOT EXISTS audit_log
(
    at     DateTime64(3, 'UTC') DEFAULT now64(3),
    actor  String COMMENT 'user email, token_id, or system',
    action LowCardinality(String) COMMENT 'e.g. login, user.create, token.revoke, ingest.run, export',
    target String DEFAULT '',
    detail String DEFAULT '' COMMENT 'JSON object with the specifics',
    ip     String DEFAULT ''
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, actor)
TTL toDateTime(at) + INTERVAL 2 YEAR
SETTINGS ttl_only_drop_parts = 1
COMMENT 'who did what when'
