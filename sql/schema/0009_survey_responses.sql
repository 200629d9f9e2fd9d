-- survey_responses: ReplacingMergeTree(loaded_at) ORDER BY (source, response_id), PARTITION BY toYYYYMM(answered_at), no TTL: response ids are unique per source, so a re-load replaces the row, month partitions serve NPS/CSAT/CES period queries (kind is LowCardinality and filtered per metric).
CREATE TABLE IF NOT EXISTS survey_responses
(
    response_id   String COMMENT 'deterministic id, unique within source',
    customer_id   String DEFAULT '' COMMENT 'canonical customer id, empty for anonymous answers',
    answered_at   DateTime64(3, 'UTC'),
    kind          LowCardinality(String) COMMENT 'nps (0-10) | csat (1-5) | ces (1-7)',
    score         Int16,
    topic         LowCardinality(String) DEFAULT '',
    channel       LowCardinality(String) DEFAULT '',
    comment       String DEFAULT '',
    ticket_id     String DEFAULT '' COMMENT 'ticket the survey followed, when any',
    source        LowCardinality(String),
    ingest_run_id String DEFAULT '',
    loaded_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins'
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(answered_at)
ORDER BY (source, response_id)
COMMENT 'survey answers: NPS, CSAT, CES'
