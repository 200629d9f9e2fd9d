-- name: active_customers
-- title: Active customers
-- description: Distinct customers with at least one non-cancelled order in the period (identity-resolved, anonymous orders excluded). Distinct per bucket: a month is not the sum of its days.
-- owner: CMO
-- unit: count
-- format: #,##0
-- polarity: higher_is_better
-- kind: simple
-- time: ordered_at
-- measure: uniqExact(customer_id)
-- dimensions: channel, campaign, country
SELECT customer_id, ordered_at, channel, campaign, country
FROM orders_resolved
WHERE status != 'cancelled' AND customer_id != ''
