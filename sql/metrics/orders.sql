-- name: orders
-- title: Orders
-- description: Number of distinct orders placed in the period (cancelled orders excluded; refunded orders still count, a refund is not a cancellation). kpi-definitions.md pitfall 4.
-- owner: CFO
-- unit: count
-- format: #,##0
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: uniqExact(source, order_id)
-- dimensions: channel, campaign, country, currency, source
SELECT source, order_id, ordered_at, revenue, cost, refund, discount, currency, channel, campaign, country
FROM orders_latest
WHERE status != 'cancelled'
