-- export: when each table an export reads last changed (insert, merge, drop), and its stored rows
SELECT table, max(modification_time), sum(rows)
FROM system.parts
WHERE database = currentDatabase() AND active AND table IN {tables:Array(String)}
GROUP BY table
