-- state_list: every rollup's state, newest version of each (package metrics, rollup state).
SELECT name, metric, spec, status, watermark, generation, as_of, error, updated_at
FROM rollups FINAL
ORDER BY name
