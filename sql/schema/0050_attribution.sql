-- attribution: a parameterized view, no storage: marketing returns and cost per bucket and channel (level 'channel') or 'channel / campaign' (level 'campaign'), the one attribution model that roas, marketing_roi and analysts' own metrics read (SELECT … FROM attribution(from = …, to = …, …)).
-- Parameters: the custom-metric contract (metrics/definition.go) from (inclusive) and to (exclusive) DateTime64(3, 'UTC'), tz, grain, week_mode, fy_shift, default_margin (gross margin assumed where orders.cost is unknown), and model (first_touch, last_touch, linear, u_shaped, w_shaped, time_decay; any other value is time_decay), level, lookback_days, half_life_days.
-- Rows (bucket Date, dim String, channel String, revenue, gross_profit, spend Float64, paid UInt8): one per share of an order's credit (revenue and gross_profit, spend 0) and one per marketing_spend row (spend; revenue and gross_profit 0), so every column sums and a ratio over any set of buckets and dims is a ratio of sums. bucket is the first day, in tz, of the grain period holding the order's (or the spend's) day; dim is the channel (level 'channel') or 'channel / campaign'; paid is 1 for a paid channel, one with spend > 0 in marketing_spend (as in new_customers_paid), so "revenue attributed to ads" is sumIf(revenue, paid).
-- Attribution (HubSpot models, kpi-definitions.md): each order's revenue (gross of refunds; cancelled and anonymous orders excluded) is shared among the customer's touchpoints in the lookback_days before it (touchpoints after the order do not count; an order without any is not attributed): first_touch, last_touch, linear (1/n each), u_shaped (40 % first, 40 % last, 20 % shared by the others; 50/50 with two touches), w_shaped (first, lead = first signup, and last share 90 % equally, the others 10 %; 100 % among the key touches when there are no others), time_decay (weight 2^(−age in days / half_life_days), normalised).
-- To change it, add a migration with CREATE OR REPLACE VIEW attribution (an applied migration is never edited).
CREATE VIEW IF NOT EXISTS attribution AS
WITH
    toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS from_day,
    toDate({to:DateTime64(3, 'UTC')}, {tz:String}) AS to_day,
    paths AS (
        SELECT c.ordered_at AS ordered_at, c.revenue AS revenue, c.margin AS margin,
               arraySort(x -> x.1, groupArray((t.occurred_at, if({level:String} = 'channel', t.channel, concat(t.channel, ' / ', t.campaign)), t.kind, t.channel))) AS path
        FROM (
            SELECT source, order_id, customer_id, ordered_at, toFloat64(revenue) AS revenue,
                   toFloat64(revenue) - ifNull(toFloat64(cost), toFloat64(revenue) * (1 - {default_margin:Float64})) AS margin
            FROM orders_resolved
            WHERE status != 'cancelled' AND customer_id != ''
              AND ordered_at >= {from:DateTime64(3, 'UTC')} AND ordered_at < {to:DateTime64(3, 'UTC')}
        ) AS c
        INNER JOIN (
            SELECT customer_id, occurred_at, channel, campaign, kind
            FROM touchpoints_resolved
            WHERE customer_id != '' AND occurred_at < {to:DateTime64(3, 'UTC')}
              AND occurred_at >= {from:DateTime64(3, 'UTC')} - toIntervalDay({lookback_days:Int64})
        ) AS t ON t.customer_id = c.customer_id
        WHERE t.occurred_at <= c.ordered_at AND t.occurred_at >= c.ordered_at - toIntervalDay({lookback_days:Int64})
        GROUP BY c.source, c.order_id, c.ordered_at, c.revenue, c.margin
    ),
    weighted AS (
        SELECT ordered_at, revenue, margin, path, n, lead,
               length(arrayDistinct(arrayFilter(k -> k > 0, [1, n, lead]))) AS keys,
               arraySum(arrayMap(x -> pow(2, -dateDiff('second', x.1, ordered_at) / 86400 / {half_life_days:Float64}), path)) AS decay_sum,
               arrayMap(i -> multiIf(
                   {model:String} = 'first_touch', if(i = 1, 1., 0.),
                   {model:String} = 'last_touch', if(i = n, 1., 0.),
                   {model:String} = 'linear', 1 / n,
                   {model:String} = 'u_shaped', multiIf(n = 1, 1., n = 2, 0.5, i = 1 OR i = n, 0.4, 0.2 / (n - 2)),
                   {model:String} = 'w_shaped', if(i = 1 OR i = n OR i = lead,
                                                   if(n > keys, 0.9, 1.) / keys,
                                                   0.1 / (n - keys)),
                   pow(2, -dateDiff('second', path[i].1, ordered_at) / 86400 / {half_life_days:Float64}) / decay_sum
               ), range(1, n + 1)) AS weights
        FROM (SELECT *, length(path) AS n, indexOf(arrayMap(x -> x.3, path), 'signup') AS lead FROM paths)
    ),
    rows AS (
        SELECT toDate(ordered_at, {tz:String}) AS d, pw.1 AS channel, pw.2 AS dim, revenue * pw.3 AS revenue, margin * pw.3 AS gross_profit, 0. AS spend
        FROM weighted
        ARRAY JOIN arrayZip(arrayMap(x -> x.4, path), arrayMap(x -> x.2, path), weights) AS pw
        UNION ALL
        SELECT date, channel, if({level:String} = 'channel', channel, concat(channel, ' / ', campaign)), 0., 0., toFloat64(spend)
        FROM marketing_spend FINAL
        WHERE date >= from_day AND date < to_day
    )
SELECT multiIf({grain:String} = 'day', d, {grain:String} = 'week', toStartOfWeek(d, {week_mode:UInt8}),
               {grain:String} = 'month', toStartOfMonth(d),
               {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32}),
               addMonths(toStartOfYear(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32})) AS bucket,
       dim, channel, revenue, gross_profit, spend,
       channel IN (SELECT channel FROM marketing_spend FINAL WHERE spend > 0) AS paid
FROM rows
