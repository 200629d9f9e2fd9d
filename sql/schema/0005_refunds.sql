-- refunds: ReplacingMergeTree(loaded_at) ORDER BY (source, refund_id), PARTITION BY toYYYYMM(refunded_at), no TTL: refund ids are deterministic per source, so a re-load replaces the row, month partitions serve period queries (a refund counts in the period it was paid back, not in the order's).
CREATE TABLE IF NOT EXISTS refunds
(
    refund_id     String COMMENT 'deterministic id, unique within source',
    order_id      String DEFAULT '' COMMENT 'refunded order (same source), empty when unknown',
    customer_id   String DEFAULT '' COMMENT 'canonical customer id, empty for anonymous',
    refunded_at   DateTime64(3, 'UTC'),
    amount        Decimal(18, 4) COMMENT 'money paid back, positive, in currency',
    currency      LowCardinality(String),
    reason        LowCardinality(String) DEFAULT '',
    source        LowCardinality(String),
    ingest_run_id String DEFAULT '',
    loaded_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins'
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(refunded_at)
ORDER BY (source, refund_id)
COMMENT 'refunds, a refund is not a purchase'
