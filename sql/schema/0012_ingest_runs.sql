-- ingest_runs: ReplacingMergeTree(version) ORDER BY run_id, no PARTITION BY, no TTL: a run is written as running and again with its final status and counts, the row with the larger version replaces the first, one row per run, small, kept as the load history (the audit trail of every fact's ingest_run_id).
CREATE TABLE IF NOT EXISTS ingest_runs
(
    run_id         String COMMENT 'UUID',
    entity         LowCardinality(String) COMMENT 'target entity: orders, customers, ...',
    source         String COMMENT 'file path, or events for the HTTP endpoint',
    preset         LowCardinality(String) DEFAULT '',
    started_at     DateTime64(3, 'UTC'),
    finished_at    Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL while running',
    status         LowCardinality(String) COMMENT 'running | succeeded | failed',
    rows_read      UInt64 DEFAULT 0,
    rows_loaded    UInt64 DEFAULT 0,
    rows_rejected  UInt64 DEFAULT 0 COMMENT 'rows sent to quarantine',
    rows_duplicate UInt64 DEFAULT 0,
    bytes          UInt64 DEFAULT 0,
    checksum       String DEFAULT '' COMMENT 'SHA-256 of the input file, hex, empty for streams',
    error          String DEFAULT '',
    host           String DEFAULT '',
    version        UInt64 COMMENT 'grows with each write of a run (e.g. Unix nanoseconds), the final row must be larger than the running one',
    updated_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY run_id
COMMENT 'one row per ingest run: what was loaded when, from where, with what counts'
