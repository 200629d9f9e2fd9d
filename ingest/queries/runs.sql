-- One page of ingest runs, newest first, filtered by source (record_source), entity and status ('' = any).
SELECT run_id, toString(entity), source, toString(record_source), toString(preset), started_at, finished_at, toString(status),
    rows_read, rows_loaded, rows_rejected, rows_duplicate, bytes, error, warnings
FROM ingest_runs FINAL
WHERE ({source:String} = '' OR record_source = {source:String})
  AND ({entity:String} = '' OR entity = {entity:String})
  AND ({status:String} = '' OR status = {status:String})
ORDER BY started_at DESC, run_id
LIMIT {limit:UInt32} OFFSET {offset:UInt64}
