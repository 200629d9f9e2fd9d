-- table_has_column: whether a table of the main database (or its shard table) has a column (package metrics: which fact tables carry a keyed rollup's key).
SELECT count() > 0 FROM system.columns
WHERE database = currentDatabase() AND table IN ({table:String}, concat({table:String}, '_local')) AND name = {column:String}
