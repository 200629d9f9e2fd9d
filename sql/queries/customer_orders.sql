-- customer_orders: the orders of customer {id} (as orders_resolved, 0031), newest first, at most {limit}; over all of them: total rows, non-cancelled orders, their revenue (net of discounts, before refunds) and refunds on the order, the currencies, the first and last non-cancelled order.
-- Rows are those the *_resolved view gives to the canonical customer {id}: under a source key identities maps to {id} (customer_source_keys, 0041), or under {id} itself in a source with no identity for it; the first condition only narrows the scan: it finds the keys of the rows stored under one of the customer's source ids (any version, through the customer_id index), so FINAL reads only the granules of those keys and then keeps each key's current version, which must still belong to the customer (a newer version may have moved to another customer).
SELECT f.ordered_at AS ordered_at, f.source AS source, f.order_id AS order_id, f.status AS status, f.channel AS channel, f.campaign AS campaign,
       toFloat64(f.revenue) AS revenue, toFloat64(f.refund) AS refund, f.currency AS currency,
       count() OVER () AS total,
       countIf(f.status != 'cancelled') OVER () AS orders,
       sumIf(toFloat64(f.revenue), f.status != 'cancelled') OVER () AS revenue_total,
       sumIf(toFloat64(f.refund), f.status != 'cancelled') OVER () AS refund_total,
       arraySort(groupUniqArrayIf(f.currency, f.status != 'cancelled') OVER ()) AS currencies,
       minIf(f.ordered_at, f.status != 'cancelled') OVER () AS first_order,
       maxIf(f.ordered_at, f.status != 'cancelled') OVER () AS last_order
FROM orders AS f FINAL
WHERE (f.source, f.order_id) IN (SELECT source, order_id FROM orders
        WHERE customer_id IN (SELECT source_key FROM customer_source_keys(id = {id:String}) UNION ALL SELECT {id:String}))
  AND ((f.source, f.customer_id) IN (SELECT source, source_key FROM customer_source_keys(id = {id:String}))
       OR f.customer_id = {id:String} AND f.source NOT IN (SELECT source FROM identities WHERE source_key = {id:String}))
ORDER BY f.ordered_at DESC, f.source, f.order_id
LIMIT {limit:UInt32}
