-- affected_customers: the canonical customer ids (identity_map applied, as the *_resolved views do) of the rows of a fact table in the given parts (package metrics: the rows of a keyed rollup to recompute).
SELECT DISTINCT if(m.canonical = '', f.customer_id, m.canonical) AS k
FROM (SELECT DISTINCT source, customer_id FROM {table:Identifier} WHERE _part IN {parts:Array(String)} AND customer_id != '') AS f
LEFT JOIN identity_map AS m ON f.source = m.source AND f.customer_id = m.source_key
