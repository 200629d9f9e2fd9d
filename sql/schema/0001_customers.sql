-- customers: ReplacingMergeTree(updated_at) ORDER BY (source, customer_id), no PARTITION BY, no TTL: one row per customer record of each source (two sources may use the same id for different people), the newest updated_at wins, so re-loads are idempotent; a dimension read whole, so time partitions would only split a customer's versions across parts that never merge.
-- Identity resolution groups these records into canonical customers (identities); customers_resolved is the single customer view.
-- Read with FINAL (or argMax by updated_at) for the current row.
CREATE TABLE IF NOT EXISTS customers
(
    customer_id          String COMMENT 'the id the source uses for the customer (identities maps it to the canonical id)',
    email                String DEFAULT '' COMMENT 'normalised: trimmed, lower case, empty when unknown',
    phone                String DEFAULT '' COMMENT 'normalised E.164, empty when unknown',
    first_seen_at        DateTime64(3, 'UTC') COMMENT 'earliest time any source saw this customer',
    acquisition_channel  LowCardinality(String) DEFAULT '',
    acquisition_campaign LowCardinality(String) DEFAULT '',
    country              LowCardinality(String) DEFAULT '' COMMENT 'ISO 3166-1 alpha-2, upper case',
    segment              LowCardinality(String) DEFAULT '',
    source               LowCardinality(String) COMMENT 'source that wrote this version',
    ingest_run_id        String DEFAULT '',
    updated_at           DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the newest row per (source, customer_id) wins',
    loaded_at            DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (source, customer_id)
COMMENT 'customer records, one per source and id'
