-- name: clv_historic
-- title: Historic CLV (gross margin)
-- description: Historic CLV, kpi-definitions.md: per customer, the sum of gross margin (revenue − cost − refunds; discounts are already deducted from revenue) over the whole observed history; cost from orders.cost or, when unknown, the margin % setting (report.default_margin, default 30 %) (as cogs). Averaged over the customers acquired (first order) in the bucket: a cohort view, so that LTV:CAC compares the same cohort. Gross-margin based, not revenue based.
-- owner: CFO
-- unit: currency
-- format: #,##0.00
-- polarity: higher_is_better
-- kind: simple
-- time: first_order_at
-- measure: sum(margin) / count()
-- dimensions: channel, country
-- rollup: by customer_id
SELECT o.customer_id AS customer_id, o.first_order_at AS first_order_at, o.channel AS channel, o.country AS country,
       o.margin - ifNull(r.refunded, 0) AS margin
FROM (
    SELECT customer_id,
           min(ordered_at) AS first_order_at,
           argMin(channel, ordered_at) AS channel,
           argMin(country, ordered_at) AS country,
           sum(toFloat64(revenue) - ifNull(toFloat64(cost), toFloat64(revenue) * (1 - {default_margin:Float64})) - toFloat64(refund)) AS margin
    FROM orders_resolved
    WHERE status != 'cancelled' AND customer_id != ''
    GROUP BY customer_id
) AS o
LEFT JOIN (
    SELECT customer_id, sum(toFloat64(amount)) AS refunded FROM refunds_resolved WHERE customer_id != '' GROUP BY customer_id
) AS r ON r.customer_id = o.customer_id
