-- customer_touchpoints: the touchpoints of customer {id} (as touchpoints_resolved, 0034), newest first, at most {limit}; total counts all of them.
-- Rows are those the *_resolved view gives to the canonical customer {id}: under a source key identities maps to {id} (customer_source_keys, 0041), or under {id} itself in a source with no identity for it; the first condition only narrows the scan: it finds the keys of the rows stored under one of the customer's source ids (any version, through the customer_id index), so FINAL reads only the granules of those keys and then keeps each key's current version, which must still belong to the customer (a newer version may have moved to another customer).
SELECT f.occurred_at AS occurred_at, f.source AS source, f.channel AS channel, f.campaign AS campaign, f.kind AS kind,
       f.utm_source AS utm_source, f.utm_medium AS utm_medium, count() OVER () AS total
FROM touchpoints AS f FINAL
WHERE (f.source, toDate(f.occurred_at), f.event_id) IN (SELECT source, toDate(occurred_at), event_id FROM touchpoints
        WHERE customer_id IN (SELECT source_key FROM customer_source_keys(id = {id:String}) UNION ALL SELECT {id:String}))
  AND ((f.source, f.customer_id) IN (SELECT source, source_key FROM customer_source_keys(id = {id:String}))
       OR f.customer_id = {id:String} AND f.source NOT IN (SELECT source FROM identities WHERE source_key = {id:String}))
ORDER BY f.occurred_at DESC, f.source, f.event_id
LIMIT {limit:UInt32}
