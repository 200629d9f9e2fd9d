-- name: repeat_purchase_rate
-- title: Repeat purchase rate
-- description: Share, in %, of the period's active customers who made a repeat purchase in it (an order on a later day than their first order ever; same-day orders are one purchase, as for BG/NBD). 100 × customers with a repeat purchase / active customers, both distinct per bucket.
-- owner: CMO
-- unit: percent
-- format: 0.0
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: 100 * uniqExactIf(customer_id, is_repeat) / uniqExact(customer_id)
-- dimensions: channel, country
-- rollup: by customer_id
SELECT o.customer_id AS customer_id, o.ordered_at AS ordered_at, o.channel AS channel, o.country AS country,
       toDate(o.ordered_at) > f.first_day AS is_repeat
FROM orders_resolved AS o
INNER JOIN (
    SELECT customer_id, min(toDate(ordered_at)) AS first_day
    FROM orders_resolved
    WHERE status != 'cancelled' AND customer_id != ''
    GROUP BY customer_id
) AS f ON f.customer_id = o.customer_id
WHERE o.status != 'cancelled' AND o.customer_id != ''
