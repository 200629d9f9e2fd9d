-- identity_keys: the distinct values of a key column of a fact table in its rows of the given source ids (srcs[i], keys[i] as source, customer_id), any version (package metrics, rollup_identity.go: the keys of a rollup by another key that an identity change dirties).
SELECT DISTINCT toString({key:Identifier}) AS k FROM {table:Identifier}
WHERE (source, customer_id) IN (SELECT tupleElement(t, 1), tupleElement(t, 2) FROM (SELECT arrayJoin(arrayZip({srcs:Array(String)}, {keys:Array(String)})) AS t))
