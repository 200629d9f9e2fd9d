-- name: cogs
-- title: Cost of goods sold
-- description: Cost of goods of the orders of the period (cancelled excluded). Where an order's cost is unknown (NULL) it is estimated with the margin % setting: cost = revenue × (1 − report.default_margin), default 0.30 (an assumed gross margin of 30 %). kpi-definitions.md pitfall 5.
-- owner: CFO
-- unit: currency
-- format: #,##0.00
-- polarity: lower_is_better
-- kind: simple
-- time: ordered_at
-- measure: sum(ifNull(toFloat64(cost), toFloat64(revenue) * (1 - {default_margin:Float64})))
-- dimensions: channel, campaign, country, currency, source
SELECT source, order_id, ordered_at, revenue, cost, currency, channel, campaign, country
FROM orders_latest
WHERE status != 'cancelled'
