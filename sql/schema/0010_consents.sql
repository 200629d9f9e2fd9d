-- consents: ReplacingMergeTree(loaded_at) ORDER BY (customer_id, channel, purpose, source_system, recorded_at), no PARTITION BY, no TTL: an append-only history (every grant and withdrawal is a row, current state = argMax(granted, recorded_at)), recorded_at in the key keeps the history while a re-load of the same record collapses, no TTL, since consent evidence must be kept, small and read whole per customer, so no partitions.
CREATE TABLE IF NOT EXISTS consents
(
    customer_id   String COMMENT 'canonical customer id',
    channel       LowCardinality(String) COMMENT 'email | sms | phone | push | post | ...',
    purpose       LowCardinality(String) COMMENT 'marketing | analytics | profiling | ...',
    granted       Bool COMMENT 'true = granted, false = refused or withdrawn',
    source_system LowCardinality(String) COMMENT 'system where the consent was captured',
    recorded_at   DateTime64(3, 'UTC') COMMENT 'when the person gave or withdrew it',
    source        LowCardinality(String) COMMENT 'converge source that loaded the record',
    ingest_run_id String DEFAULT '',
    loaded_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins'
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (customer_id, channel, purpose, source_system, recorded_at)
COMMENT 'consent history, latest state by argMax(granted, recorded_at)'
