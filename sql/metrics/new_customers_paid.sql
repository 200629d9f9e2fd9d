-- name: new_customers_paid
-- title: New customers from paid channels
-- description: New customers (see new_customers) whose first order came through a paid channel, a channel with marketing spend > 0 in marketing_spend. Denominator of CAC (paid), kpi-definitions.md.
-- owner: CMO
-- unit: count
-- format: #,##0
-- polarity: higher_is_better
-- kind: simple
-- time: first_order_at
-- measure: uniqExact(customer_id)
-- dimensions: channel, campaign, channel_campaign, country
-- rollup: by customer_id
SELECT * FROM (
    SELECT customer_id,
           min(ordered_at) AS first_order_at,
           argMin(channel, ordered_at) AS channel,
           argMin(campaign, ordered_at) AS campaign,
           concat(channel, ' / ', campaign) AS channel_campaign,
           argMin(country, ordered_at) AS country
    FROM orders_resolved
    WHERE status != 'cancelled' AND customer_id != ''
    GROUP BY customer_id
)
WHERE channel IN (SELECT channel FROM marketing_spend FINAL WHERE spend > 0)
