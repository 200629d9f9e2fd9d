-- customer_source_keys: a parameterized view, no storage: customer_source_keys(id = 'C…') lists the (source, source_key) pairs that identities currently maps (newest matched_at) to the canonical customer id, i.e. the source ids whose facts the *_resolved views give to that customer; facts under id itself in a source with no identity for it belong to it as well (the views keep an unmapped id as it is). The customer pages read one customer's facts through it instead of resolving every fact.
CREATE VIEW IF NOT EXISTS customer_source_keys AS
SELECT source, source_key
FROM identities
WHERE source_key IN (SELECT source_key FROM identities WHERE customer_id = {id:String}) OR source_key = {id:String}
GROUP BY source, source_key
HAVING argMax(customer_id, matched_at) = {id:String}
