-- name: engagement_score
-- title: Engagement score
-- description: Engagement score, kpi-definitions.md (project-defined): per customer, over the window [from, to), a weighted mean of normalised components, 0–100. Components: sales recency (days since the last order before {to}, fewer is better), frequency (distinct orders), monetary (net revenue); marketing opens, clicks, visits (touchpoints); service NPS (latest answer), CSAT (mean answer) and tickets (fewer is better). Each component is normalised to its percent rank among all customers (ties share a rank; reversed components use the negated value), so the score is deterministic and monotone in each component. Weights are the w_* constants below (they need not sum to 1; the score divides by their sum). Customers without an answer get the lowest rank for NPS and CSAT. One row per customer, best first; the limit param bounds the list explicitly (customers is the total).
-- owner: CCO
-- unit: score
-- format: 0
-- polarity: higher_is_better
-- kind: custom
-- param: limit Int64 = 100 | 1..100000
WITH
    0.20 AS w_recency, 0.15 AS w_frequency, 0.15 AS w_monetary,
    0.10 AS w_opens, 0.10 AS w_clicks, 0.05 AS w_visits,
    0.10 AS w_nps, 0.10 AS w_csat, 0.05 AS w_tickets,
    comp AS (
        SELECT c.customer_id AS customer_id,
               -ifNull(dateDiff('day', o.last_at, {to:DateTime64(3, 'UTC')}), 100000) AS recency,
               ifNull(o.frequency, 0) AS frequency,
               ifNull(o.monetary, 0) AS monetary,
               ifNull(t.opens, 0) AS opens, ifNull(t.clicks, 0) AS clicks, ifNull(t.visits, 0) AS visits,
               ifNull(s.nps, -1) AS nps, ifNull(s.csat, -1) AS csat,
               -ifNull(k.tickets, 0) AS tickets
        FROM (SELECT customer_id FROM customers_resolved) AS c
        LEFT JOIN (
            SELECT customer_id, max(ordered_at) AS last_at, uniqExact(source, order_id) AS frequency,
                   sum(toFloat64(revenue) - toFloat64(refund)) AS monetary
            FROM orders_resolved
            WHERE status != 'cancelled' AND customer_id != ''
              AND ordered_at >= {from:DateTime64(3, 'UTC')} AND ordered_at < {to:DateTime64(3, 'UTC')}
            GROUP BY customer_id
        ) AS o ON o.customer_id = c.customer_id
        LEFT JOIN (
            SELECT customer_id, countIf(kind = 'open') AS opens, countIf(kind = 'click') AS clicks, countIf(kind = 'visit') AS visits
            FROM touchpoints_resolved
            WHERE customer_id != '' AND occurred_at >= {from:DateTime64(3, 'UTC')} AND occurred_at < {to:DateTime64(3, 'UTC')}
            GROUP BY customer_id
        ) AS t ON t.customer_id = c.customer_id
        LEFT JOIN (
            SELECT customer_id, toFloat64(argMaxIf(score, answered_at, kind = 'nps')) AS nps_raw, countIf(kind = 'nps') > 0 AS has_nps,
                   if(has_nps, nps_raw, NULL) AS nps,
                   if(countIf(kind = 'csat') > 0, avgIf(score, kind = 'csat'), NULL) AS csat
            FROM survey_responses_resolved
            WHERE customer_id != '' AND answered_at >= {from:DateTime64(3, 'UTC')} AND answered_at < {to:DateTime64(3, 'UTC')}
            GROUP BY customer_id
        ) AS s ON s.customer_id = c.customer_id
        LEFT JOIN (
            SELECT customer_id, count() AS tickets FROM tickets_resolved
            WHERE customer_id != '' AND opened_at >= {from:DateTime64(3, 'UTC')} AND opened_at < {to:DateTime64(3, 'UTC')}
            GROUP BY customer_id
        ) AS k ON k.customer_id = c.customer_id
    ),
    ranked AS (
        SELECT customer_id,
               percent_rank() OVER (ORDER BY recency) AS r_recency,
               percent_rank() OVER (ORDER BY frequency) AS r_frequency,
               percent_rank() OVER (ORDER BY monetary) AS r_monetary,
               percent_rank() OVER (ORDER BY opens) AS r_opens,
               percent_rank() OVER (ORDER BY clicks) AS r_clicks,
               percent_rank() OVER (ORDER BY visits) AS r_visits,
               percent_rank() OVER (ORDER BY nps) AS r_nps,
               percent_rank() OVER (ORDER BY csat) AS r_csat,
               percent_rank() OVER (ORDER BY tickets) AS r_tickets
        FROM comp
    )
SELECT customer_id,
       round(100 * (w_recency * r_recency + w_frequency * r_frequency + w_monetary * r_monetary
                  + w_opens * r_opens + w_clicks * r_clicks + w_visits * r_visits
                  + w_nps * r_nps + w_csat * r_csat + w_tickets * r_tickets)
                 / (w_recency + w_frequency + w_monetary + w_opens + w_clicks + w_visits + w_nps + w_csat + w_tickets), 2) AS score,
       round(100 * (w_recency * r_recency + w_frequency * r_frequency + w_monetary * r_monetary) / (w_recency + w_frequency + w_monetary), 2) AS sales,
       round(100 * (w_opens * r_opens + w_clicks * r_clicks + w_visits * r_visits) / (w_opens + w_clicks + w_visits), 2) AS marketing,
       round(100 * (w_nps * r_nps + w_csat * r_csat + w_tickets * r_tickets) / (w_nps + w_csat + w_tickets), 2) AS service,
       count() OVER () AS customers
FROM ranked
ORDER BY score DESC, customer_id
LIMIT {limit:Int64}
