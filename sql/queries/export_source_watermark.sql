-- export: the latest load of a table (its time column is loaded_at or matched_at) and the ingest run that wrote it
SELECT max({time:Identifier}), argMax(ingest_run_id, {time:Identifier})
FROM {table:Identifier}
