-- touchpoints: ReplacingMergeTree(loaded_at) ORDER BY (source, toDate(occurred_at), event_id), PARTITION BY toYYYYMM(occurred_at), no TTL: event ids are unique per source and an event's time never changes, so the day in the key keeps dedup exact while letting date ranges skip granules, retried HTTP events and re-loads collapse.
-- No TTL: attribution lookback windows and the engagement score need history, and how long to keep behavioural data is each deployment's privacy decision: ALTER TABLE touchpoints MODIFY TTL toDateTime(occurred_at) + INTERVAL 25 MONTH.
CREATE TABLE IF NOT EXISTS touchpoints
(
    event_id      String COMMENT 'deterministic or client-generated id, unique within source',
    customer_id   String DEFAULT '' COMMENT 'canonical customer id, empty while the visitor is anonymous',
    anonymous_id  String DEFAULT '' COMMENT 'device/cookie id before identification',
    occurred_at   DateTime64(3, 'UTC'),
    channel       LowCardinality(String),
    campaign      LowCardinality(String) DEFAULT '',
    kind          LowCardinality(String) COMMENT 'impression | click | open | visit | signup | ...',
    utm_source    LowCardinality(String) DEFAULT '',
    utm_medium    LowCardinality(String) DEFAULT '',
    utm_campaign  LowCardinality(String) DEFAULT '',
    utm_content   String DEFAULT '',
    utm_term      String DEFAULT '',
    properties    String DEFAULT '' COMMENT 'other event fields as a JSON object',
    source        LowCardinality(String) COMMENT 'preset name, or events for the HTTP endpoint',
    ingest_run_id String DEFAULT '',
    loaded_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins',
    INDEX customer_idx customer_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (source, toDate(occurred_at), event_id)
COMMENT 'marketing interactions: impressions, clicks, opens, visits, signups'
