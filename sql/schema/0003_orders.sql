-- orders: ReplacingMergeTree(loaded_at) ORDER BY (source, order_id), PARTITION BY toYYYYMM(ordered_at), no TTL: order ids are deterministic and unique per source only, so the dedup key is (source, order_id) and a re-load replaces the earlier row (latest load wins), month partitions prune date-range KPI queries and keep merges small.
-- ReplacingMergeTree deduplicates within a partition only: ordered_at must not change for an order_id across loads.
-- Read with FINAL. Sales facts are kept for the whole customer history (CLV, cohorts), hence no TTL.
CREATE TABLE IF NOT EXISTS orders
(
    order_id           String COMMENT 'deterministic id, unique within source',
    customer_id        String DEFAULT '' COMMENT 'canonical customer id, empty string (not NULL) for an anonymous order, so GROUP BY and joins need no Nullable handling',
    source_customer_id String DEFAULT '' COMMENT 'customer id as the source gave it',
    ordered_at         DateTime64(3, 'UTC'),
    revenue            Decimal(18, 4) COMMENT 'net of discounts, before refunds, in currency',
    currency           LowCardinality(String) COMMENT 'ISO 4217, upper case',
    cost               Nullable(Decimal(18, 4)) COMMENT 'cost of goods, NULL when unknown (margin metrics then use the margin % setting)',
    refund             Decimal(18, 4) DEFAULT 0 COMMENT 'amount refunded on this order when the source reports it on the order (itemised refunds go to refunds)',
    discount           Decimal(18, 4) DEFAULT 0 COMMENT 'discount granted, already deducted from revenue',
    status             LowCardinality(String) DEFAULT 'completed' COMMENT 'completed | pending | cancelled | refunded',
    channel            LowCardinality(String) DEFAULT '',
    campaign           LowCardinality(String) DEFAULT '',
    country            LowCardinality(String) DEFAULT '' COMMENT 'ISO 3166-1 alpha-2',
    source             LowCardinality(String),
    ingest_run_id      String DEFAULT '',
    loaded_at          DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins',
    INDEX customer_idx customer_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(ordered_at)
ORDER BY (source, order_id)
COMMENT 'sales orders, one row per order'
