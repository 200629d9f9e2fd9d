-- partition_customers: the customers of every row, any version, a table holds in the given partitions (package metrics, rollup_views.go: before a staging table's partitions replace a view rollup's, the customers the replaced partitions had and the new ones have).
SELECT DISTINCT customer_id FROM {table:Identifier} WHERE _partition_id IN {ids:Array(String)}
