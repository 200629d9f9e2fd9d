-- customer_rewards: the rewards given to customer {id} (as rewards_resolved, 0038), newest first, at most {limit}; over all of them: total rows, the amount and the currencies.
-- Rows are those the *_resolved view gives to the canonical customer {id}: under a source key identities maps to {id} (customer_source_keys, 0041), or under {id} itself in a source with no identity for it; the first condition only narrows the scan: it finds the keys of the rows stored under one of the customer's source ids (any version, through the customer_id index), so FINAL reads only the granules of those keys and then keeps each key's current version, which must still belong to the customer (a newer version may have moved to another customer).
SELECT f.granted_at AS granted_at, f.source AS source, f.reward_id AS reward_id, f.kind AS kind, toFloat64(f.amount) AS amount,
       f.currency AS currency, f.reason AS reason, f.campaign AS campaign, count() OVER () AS total,
       sum(toFloat64(f.amount)) OVER () AS amount_total, arraySort(groupUniqArray(f.currency) OVER ()) AS currencies
FROM rewards AS f FINAL
WHERE (f.source, f.reward_id) IN (SELECT source, reward_id FROM rewards
        WHERE customer_id IN (SELECT source_key FROM customer_source_keys(id = {id:String}) UNION ALL SELECT {id:String}))
  AND ((f.source, f.customer_id) IN (SELECT source, source_key FROM customer_source_keys(id = {id:String}))
       OR f.customer_id = {id:String} AND f.source NOT IN (SELECT source FROM identities WHERE source_key = {id:String}))
ORDER BY f.granted_at DESC, f.source, f.reward_id
LIMIT {limit:UInt32}
