-- tickets: ReplacingMergeTree(updated_at) ORDER BY (source, ticket_id), PARTITION BY toYYYYMM(opened_at), no TTL: a ticket changes state (responded, resolved, rated) and each export carries its current state, so the row with the newest updated_at replaces older ones, opened_at never changes, so month partitions are safe and prune period queries.
CREATE TABLE IF NOT EXISTS tickets
(
    ticket_id         String COMMENT 'deterministic id, unique within source',
    customer_id       String DEFAULT '' COMMENT 'canonical customer id, empty when unknown',
    opened_at         DateTime64(3, 'UTC'),
    first_response_at Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL until the first agent response',
    resolved_at       Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL while unresolved',
    channel           LowCardinality(String) DEFAULT '' COMMENT 'email | chat | phone | web | ...',
    status            LowCardinality(String) DEFAULT '' COMMENT 'open | pending | resolved | closed',
    priority          LowCardinality(String) DEFAULT '',
    topic             LowCardinality(String) DEFAULT '',
    csat              Nullable(UInt8) COMMENT 'satisfaction rating 1-5 given on the ticket, NULL when not rated',
    source            LowCardinality(String),
    ingest_run_id     String DEFAULT '',
    updated_at        DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: last change in the source (load time when the source has none)',
    loaded_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (source, ticket_id)
COMMENT 'service tickets, current state per ticket'
