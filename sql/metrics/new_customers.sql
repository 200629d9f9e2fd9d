-- name: new_customers
-- title: New customers
-- description: Customers whose first purchase (first non-cancelled order ever) falls in the period; channel, campaign and country are those of that first order. Identity-resolved customer_id, so one person with several source ids counts once (pitfall 7). Anonymous orders excluded.
-- owner: CMO
-- unit: count
-- format: #,##0
-- polarity: higher_is_better
-- kind: simple
-- time: first_order_at
-- measure: uniqExact(customer_id)
-- dimensions: channel, campaign, channel_campaign, country
-- rollup: by customer_id
SELECT customer_id,
       min(ordered_at) AS first_order_at,
       argMin(channel, ordered_at) AS channel,
       argMin(campaign, ordered_at) AS campaign,
       concat(channel, ' / ', campaign) AS channel_campaign,
       argMin(country, ordered_at) AS country
FROM orders_resolved
WHERE status != 'cancelled' AND customer_id != ''
GROUP BY customer_id
