-- ingest_runs backfill of record_source for runs recorded before 0019: the source of the keys the run wrote (ingest_keys) or of the records it rejected (quarantine), written as a new row of the run with a larger version (ReplacingMergeTree(version) keeps it). A run that left neither (all duplicates, or keys since replaced by a later run) keeps ''.
INSERT INTO ingest_runs (run_id, entity, source, record_source, preset, started_at, finished_at, status, rows_read, rows_loaded,
    rows_rejected, rows_duplicate, bytes, checksum, error, host, version, updated_at)
SELECT r.run_id, r.entity, r.source, s.record_source, r.preset, r.started_at, r.finished_at, r.status, r.rows_read, r.rows_loaded,
    r.rows_rejected, r.rows_duplicate, r.bytes, r.checksum, r.error, r.host, r.version + 1, now64(3)
FROM (SELECT * FROM ingest_runs FINAL WHERE record_source = '') AS r
INNER JOIN
(
    SELECT run_id, any(src) AS record_source
    FROM
    (
        SELECT toString(ingest_run_id) AS run_id, toString(source) AS src FROM ingest_keys WHERE ingest_run_id != ''
        UNION ALL
        SELECT run_id, toString(source) AS src FROM quarantine
    )
    GROUP BY run_id
) AS s ON s.run_id = r.run_id
