-- identity_links: ReplacingMergeTree(recorded_at) ORDER BY (source, source_key, linked_source, linked_key), no partitions, no TTL: explicit "these two source ids are one person" declarations, few and read whole by identity resolution; removed = true retracts a link (the newest row per pair wins).
CREATE TABLE IF NOT EXISTS identity_links
(
    source        LowCardinality(String),
    source_key    String,
    linked_source LowCardinality(String),
    linked_key    String,
    removed       Bool DEFAULT false,
    recorded_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(recorded_at)
ORDER BY (source, source_key, linked_source, linked_key)
COMMENT 'declared identity links between source ids'
