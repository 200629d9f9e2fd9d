-- report_runs: MergeTree ORDER BY (started_at, schedule), PARTITION BY toYYYYMM(started_at), TTL 2 years: one row per run of a scheduled report (by the scheduler of `converge serve`, or `converge reports run NAME`), written when it ends, successful or not: nothing fails silently. Append-only, read newest first (the reports page), kept 2 years like the audit log.
CREATE TABLE IF NOT EXISTS report_runs
(
    run_id       String COMMENT 'random id of the run',
    schedule     String COMMENT 'the schedule''s name (reports.schedules)',
    report       LowCardinality(String) COMMENT 'finance-monthly or metric',
    trigger      LowCardinality(String) COMMENT 'schedule (its cron) or manual (converge reports run)',
    period       String DEFAULT '' COMMENT 'what it reported on, e.g. 2026-05, or 2026-05-04..2026-05-10',
    scheduled_at DateTime64(3, 'UTC') COMMENT 'the instant the cron named (manual: when it was asked)',
    started_at   DateTime64(3, 'UTC'),
    finished_at  DateTime64(3, 'UTC'),
    status       LowCardinality(String) COMMENT 'ok, failed, or skipped (the previous run of the schedule was still going)',
    attempts     UInt8 COMMENT 'tries made (failures are retried with backoff)',
    file         String DEFAULT '' COMMENT 'path of the file written',
    bytes        UInt64 DEFAULT 0,
    sha256       String DEFAULT '',
    emailed_to   Array(String) COMMENT 'recipients the file was sent to',
    error        String DEFAULT '' COMMENT 'the last attempt''s error, empty when ok'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (started_at, schedule)
TTL toDateTime(started_at) + INTERVAL 2 YEAR
SETTINGS ttl_only_drop_parts = 1
COMMENT 'runs of scheduled reports'
