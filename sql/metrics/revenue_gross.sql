-- name: revenue_gross
-- title: Gross revenue
-- description: Sum of order revenue (net of discounts, before refunds) of the orders placed in the period, cancelled orders excluded; refunds are not deducted (see revenue_net). kpi-definitions.md pitfall 4. Answered in the report currency: orders in another currency are left out and named (there are no exchange rates), break down or filter by currency to see them (pitfall 6).
-- owner: CFO
-- unit: currency
-- format: #,##0.00
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: sum(revenue)
-- dimensions: channel, campaign, country, currency, source
SELECT source, order_id, ordered_at, revenue, currency, channel, campaign, country
FROM orders_latest
WHERE status != 'cancelled'
