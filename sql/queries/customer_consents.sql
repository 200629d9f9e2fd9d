-- customer_consents: the consent history of customer {id} (as consents_resolved, 0037): every grant and withdrawal, newest first, at most {limit}; total counts all of them.
-- Rows are those the *_resolved view gives to the canonical customer {id}: under a source key identities maps to {id} (customer_source_keys, 0041), or under {id} itself in a source with no identity for it; the first condition only narrows the scan (customer_id index).
SELECT f.recorded_at AS recorded_at, f.channel AS channel, f.purpose AS purpose, f.granted AS granted,
       f.source_system AS source_system, f.source AS source, count() OVER () AS total
FROM consents AS f FINAL
WHERE f.customer_id IN (SELECT source_key FROM customer_source_keys(id = {id:String}) UNION ALL SELECT {id:String})
  AND ((f.source, f.customer_id) IN (SELECT source, source_key FROM customer_source_keys(id = {id:String}))
       OR f.customer_id = {id:String} AND f.source NOT IN (SELECT source FROM identities WHERE source_key = {id:String}))
ORDER BY f.recorded_at DESC, f.channel, f.purpose, f.source_system
LIMIT {limit:UInt32}
