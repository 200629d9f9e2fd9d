-- purchases: a view, no storage: each canonical customer's non-cancelled orders (orders_resolved), one row per customer and 15-minute UTC slot of the order time, with the first and last order time in the slot and how many orders. The custom metrics that ask when customers bought (churn_rate, cohort_retention, funnel_conversion) read it rather than every order: any report zone whose offset is a multiple of 15 minutes (every IANA zone today) puts a slot in one local day, and first_at/last_at bound the range exactly. Package metrics keeps its rows in rollup_purchases (0099) as orders land and reads purchases_rollup (0100) instead, the same rows.
CREATE OR REPLACE VIEW purchases AS
SELECT toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC') AS slot, customer_id,
       min(ordered_at) AS first_at, max(ordered_at) AS last_at, toUInt64(count()) AS orders
FROM orders_resolved
WHERE status != 'cancelled' AND customer_id != ''
GROUP BY slot, customer_id
