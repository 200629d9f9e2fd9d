-- console_history: MergeTree ORDER BY (user, at), PARTITION BY toYYYYMM(at), TTL 1 year: one row per query an analyst ran or downloaded in the SQL console, append-only, read per user newest first (the console page lists the last 50), kept a year, then whole monthly parts are dropped (ttl_only_drop_parts).
CREATE TABLE IF NOT EXISTS console_history
(
    id          UUID DEFAULT generateUUIDv4() COMMENT 'the entry, for re-running it',
    user        String COMMENT 'the signed-in user email (or token:<id>)',
    at          DateTime64(3, 'UTC') COMMENT 'when the query started',
    query       String COMMENT 'the text as submitted',
    kind        LowCardinality(String) DEFAULT 'run' COMMENT 'run (shown on the page) | csv | xlsx | zip (downloaded)',
    duration_ms UInt32 COMMENT 'until the last row was read or the query failed',
    rows        UInt64 COMMENT 'rows returned (shown or written)',
    limited     Bool DEFAULT false COMMENT 'the result had more rows than the row limit',
    ok          Bool COMMENT 'false: refused, failed or over a limit (see error)',
    error       String DEFAULT '' COMMENT 'why it did not run, for people'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (user, at)
TTL toDateTime(at) + INTERVAL 1 YEAR
SETTINGS ttl_only_drop_parts = 1
COMMENT 'the SQL console: each user''s queries'
