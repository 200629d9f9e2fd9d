-- identities: ReplacingMergeTree(matched_at) ORDER BY (source, source_key), no PARTITION BY, no TTL: the dedup key is the source identifier itself, so each (source, source_key) maps to exactly one customer_id and a later re-match (identity merge) replaces the earlier one, small and read whole, so no partitions, a bloom filter on customer_id serves the reverse lookup.
CREATE TABLE IF NOT EXISTS identities
(
    source        LowCardinality(String) COMMENT 'system that owns source_key (a preset name, or events)',
    source_key    String COMMENT 'the id the source uses for the person',
    customer_id   String COMMENT 'canonical customer id',
    rule          LowCardinality(String) COMMENT 'rule that matched: email | phone | explicit | source_id',
    matched_at    DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the newest match wins',
    ingest_run_id String DEFAULT '',
    INDEX customer_idx customer_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(matched_at)
ORDER BY (source, source_key)
COMMENT 'identity graph: source key -> canonical customer_id'
