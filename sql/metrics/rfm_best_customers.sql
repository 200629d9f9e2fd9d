-- name: rfm_best_customers
-- title: Best customers (RFM 555)
-- description: The customers scored 555 at the snapshot {to} (see rfm_segments for R, F, M and the quintile scoring, Hughes 1994), with their recency in days, distinct orders and net revenue, best first.
-- owner: CMO
-- unit: count
-- format: #,##0
-- polarity: higher_is_better
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
    SELECT customer_id, frequency, monetary,
           dateDiff('day', last_at, {to:DateTime64(3, 'UTC')}) AS recency_days,
           ntile(5) OVER (ORDER BY recency_days DESC, customer_id) AS r,
           ntile(5) OVER (ORDER BY frequency, customer_id) AS f,
           ntile(5) OVER (ORDER BY monetary, customer_id) AS m
    FROM base
)
SELECT customer_id, recency_days, frequency, monetary AS net_revenue
FROM scored
WHERE r = 5 AND f = 5 AND m = 5
ORDER BY net_revenue DESC, customer_id
