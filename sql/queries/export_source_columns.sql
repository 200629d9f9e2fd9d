-- export: the columns of the tables an export reads, to find each one's load-time column
SELECT table, groupArray(name)
FROM system.columns
WHERE database = currentDatabase() AND table IN {tables:Array(String)}
GROUP BY table
