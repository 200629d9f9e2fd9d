-- identity_canonicals: every customer_id any version of the given source ids (srcs[i], keys[i]) has in identities, no FINAL: their canonical ids before and after an identity change (package metrics, rollup_identity.go: the keys of a rollup by customer_id to recompute).
SELECT DISTINCT customer_id FROM identities
WHERE (source, source_key) IN (SELECT tupleElement(t, 1), tupleElement(t, 2) FROM (SELECT arrayJoin(arrayZip({srcs:Array(String)}, {keys:Array(String)})) AS t))
