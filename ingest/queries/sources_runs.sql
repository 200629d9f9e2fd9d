-- Runs per source (record_source) and entity: how many, the latest run and its status, the end of the latest successful run (NULL when none succeeded), and the records rejected over all runs (ingest_runs keeps counts for good; quarantine keeps the records 180 days).
SELECT
    toString(record_source) AS source,
    toString(entity) AS entity,
    count() AS runs,
    max(started_at) AS last_run_at,
    argMax(toString(status), started_at) AS last_status,
    maxIf(finished_at, status = 'succeeded') AS last_success,
    sum(rows_rejected) AS rejected
FROM ingest_runs FINAL
GROUP BY record_source, entity
ORDER BY source, entity
