-- One page of quarantined records: the newest runs first, then in source order (line), filtered by run, source, entity and reason code ('' = any).
SELECT q.run_id, toString(q.entity), toString(q.source), q.file, q.line, q.field, toString(q.code), q.reason, q.raw, q.quarantined_at
FROM quarantine AS q
LEFT JOIN (SELECT run_id, started_at FROM ingest_runs FINAL) AS r ON r.run_id = q.run_id
WHERE ({run:String} = '' OR q.run_id = {run:String})
  AND ({source:String} = '' OR q.source = {source:String})
  AND ({entity:String} = '' OR q.entity = {entity:String})
  AND ({code:String} = '' OR q.code = {code:String})
ORDER BY r.started_at DESC, q.run_id, q.line
LIMIT {limit:UInt32} OFFSET {offset:UInt64}
