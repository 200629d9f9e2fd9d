-- purchases (v2): a view, no storage: each canonical customer's non-cancelled orders (orders_resolved), one row per customer and 15-minute UTC slot of the order time, with the first and last order time in the slot, how many orders, and next_at, the first order time of the customer's next such slot (2199-12-31 23:59:59 when there is none). The custom metrics that ask when customers bought (churn_rate, cohort_retention, funnel_conversion) read it rather than every order: any report zone whose offset is a multiple of 15 minutes (every IANA zone today) puts a slot in one local day, and first_at/last_at bound the range exactly; next_at lets churn follow each customer from row to row without grouping. Package metrics keeps its rows in rollup_purchases (0104) as orders land and reads purchases_rollup (0106) instead, the same rows.
CREATE OR REPLACE VIEW purchases AS
SELECT slot, customer_id, first_at, last_at, orders,
       leadInFrame(first_at, 1, toDateTime64('2199-12-31 23:59:59', 3, 'UTC'))
           OVER (PARTITION BY customer_id ORDER BY slot ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_at
FROM (
    SELECT toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC') AS slot, customer_id,
           min(ordered_at) AS first_at, max(ordered_at) AS last_at, toUInt64(count()) AS orders
    FROM orders_resolved
    WHERE status != 'cancelled' AND customer_id != ''
    GROUP BY slot, customer_id
)
