-- quarantine: MergeTree ORDER BY (run_id, line), PARTITION BY toYYYYMM(quarantined_at), TTL 180 days: rejected records are looked up per run in source order, append-only (a run's records are never rewritten), kept 180 days, long enough to fix and re-load a source, after which whole monthly parts are dropped (ttl_only_drop_parts) instead of rewritten, ingest_runs keeps the counts for good.
CREATE TABLE IF NOT EXISTS quarantine
(
    run_id         String,
    entity         LowCardinality(String),
    source         LowCardinality(String) COMMENT 'preset or events',
    file           String DEFAULT '',
    line           UInt64 COMMENT 'position in the source: line (CSV/NDJSON) or record number, from 1',
    field          String DEFAULT '' COMMENT 'offending field, empty when the whole record is bad',
    code           LowCardinality(String) DEFAULT '' COMMENT 'machine-readable reason, e.g. missing_field, bad_date',
    reason         String,
    raw            String COMMENT 'the record as received' CODEC(ZSTD(3)),
    quarantined_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(quarantined_at)
ORDER BY (run_id, line)
TTL toDateTime(quarantined_at) + INTERVAL 180 DAY
SETTINGS ttl_only_drop_parts = 1
COMMENT 'rejected records with their source position and reason'
