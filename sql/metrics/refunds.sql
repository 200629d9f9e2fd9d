-- name: refunds
-- title: Refunds
-- description: Money paid back in the period: itemised refunds (refunds table) counted when paid back (refunded_at), plus refunds reported on the order itself (orders.refund) counted at the order time. A refund is not a purchase. kpi-definitions.md pitfall 4.
-- owner: CFO
-- unit: currency
-- format: #,##0.00
-- polarity: lower_is_better
-- kind: simple
-- time: at
-- measure: sum(amount)
-- dimensions: channel, campaign, country, currency, source
-- rollup: by order_id
SELECT r.refunded_at AS at, r.amount AS amount, r.currency AS currency, r.source AS source, r.order_id AS order_id,
       o.channel AS channel, o.campaign AS campaign, o.country AS country
FROM refunds AS r FINAL
LEFT JOIN (SELECT source, order_id, channel, campaign, country FROM orders_latest
           WHERE (source, order_id) IN (SELECT source, order_id FROM refunds)) AS o
       ON o.source = r.source AND o.order_id = r.order_id
UNION ALL
SELECT ordered_at AS at, refund AS amount, currency, source, order_id, channel, campaign, country
FROM orders_latest
WHERE refund != 0 AND status != 'cancelled'
