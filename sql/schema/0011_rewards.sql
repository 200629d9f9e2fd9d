-- rewards: ReplacingMergeTree(loaded_at) ORDER BY (source, reward_id), PARTITION BY toYYYYMM(granted_at), no TTL: reward ids are unique per source, so a re-load replaces the row, month partitions serve relationship-spend period queries.
CREATE TABLE IF NOT EXISTS rewards
(
    reward_id     String COMMENT 'deterministic id, unique within source',
    customer_id   String COMMENT 'canonical customer id',
    granted_at    DateTime64(3, 'UTC'),
    kind          LowCardinality(String) DEFAULT '' COMMENT 'voucher | points | gift | goodwill | ...',
    amount        Decimal(18, 4) COMMENT 'value (cost to us) in currency',
    currency      LowCardinality(String),
    reason        String DEFAULT '',
    campaign      LowCardinality(String) DEFAULT '',
    source        LowCardinality(String),
    ingest_run_id String DEFAULT '',
    loaded_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins'
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(granted_at)
ORDER BY (source, reward_id)
COMMENT 'small incentives given to customers (relationship spend)'
