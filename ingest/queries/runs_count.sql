-- How many ingest runs match the filters of runs.sql.
SELECT count()
FROM ingest_runs FINAL
WHERE ({source:String} = '' OR record_source = {source:String})
  AND ({entity:String} = '' OR entity = {entity:String})
  AND ({status:String} = '' OR status = {status:String})
