-- identity_partitions: the partitions of a fact table holding rows of the given source ids (srcs[i], keys[i] as source, customer_id), any version (package metrics, rollup_identity.go: the partitions of a rollup an identity change dirties).
SELECT DISTINCT _partition_id FROM {table:Identifier}
WHERE (source, customer_id) IN (SELECT tupleElement(t, 1), tupleElement(t, 2) FROM (SELECT arrayJoin(arrayZip({srcs:Array(String)}, {keys:Array(String)})) AS t))
