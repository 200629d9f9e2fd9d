-- name: rfm_segments
-- title: RFM segments
-- description: RFM, kpi-definitions.md (Hughes 1994): at the snapshot {to}, per customer with an order before it, R = days since the last purchase, F = distinct orders, M = net revenue (revenue − refunds on the order − itemised refunds); each scored 1–5 by quintile (ntile over the customers, R reversed: most recent = 5; ties broken by customer_id, deterministic). One row per RFM code with its customers and net revenue; "555" are the best customers (see rfm_best_customers). The whole history before {to} counts; {from} is not used.
-- owner: CMO
-- unit: count
-- format: #,##0
-- polarity: neutral
-- kind: custom
WITH base AS (
    SELECT o.customer_id AS customer_id, o.last_at AS last_at, o.frequency AS frequency, o.net - ifNull(r.refunded, 0) AS monetary
    FROM (
        SELECT customer_id, max(ordered_at) AS last_at, uniqExact(source, order_id) AS frequency,
               sum(toFloat64(revenue) - toFloat64(refund)) AS net
        FROM orders_resolved
        WHERE status != 'cancelled' AND customer_id != '' AND ordered_at < {to:DateTime64(3, 'UTC')}
        GROUP BY customer_id
    ) AS o
    LEFT JOIN (SELECT customer_id, sum(toFloat64(amount)) AS refunded FROM refunds_resolved
               WHERE customer_id != '' AND refunded_at < {to:DateTime64(3, 'UTC')} GROUP BY customer_id) AS r
      ON r.customer_id = o.customer_id
),
scored AS (
    SELECT customer_id, monetary,
           dateDiff('day', last_at, {to:DateTime64(3, 'UTC')}) AS recency_days,
           ntile(5) OVER (ORDER BY recency_days DESC, customer_id) AS r,
           ntile(5) OVER (ORDER BY frequency, customer_id) AS f,
           ntile(5) OVER (ORDER BY monetary, customer_id) AS m
    FROM base
)
SELECT concat(toString(r), toString(f), toString(m)) AS rfm, r, f, m, count() AS customers, sum(monetary) AS net_revenue
FROM scored
GROUP BY r, f, m
ORDER BY rfm DESC
