-- partition_key: the partition key of a table of the main database, or of its shard table in cluster mode (package metrics, to align a rollup's partitions with its fact table's).
SELECT partition_key FROM system.tables
WHERE database = currentDatabase() AND name IN ({table:String}, concat({table:String}, '_local')) AND partition_key != ''
LIMIT 1
