-- attribution (v2): as 0050 (parameters, rows and models unchanged; see its header), with the join's sides swapped: the year's orders (about 3M rows on the large demo) are the hash table and the touchpoints (about 15M) stream past it, instead of the other way round; and a path is sorted by its whole tuples (time, then dim, kind, channel), so touches at the same instant keep one order whatever order the join produced them in. On the large demo a year at month grain took 84 s and 6.0 GB before, 39 s and 2.3 GB after, with the same rows.
CREATE OR REPLACE VIEW attribution AS
WITH
    toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS from_day,
    toDate({to:DateTime64(3, 'UTC')}, {tz:String}) AS to_day,
    paths AS (
        SELECT c.ordered_at AS ordered_at, c.revenue AS revenue, c.margin AS margin,
               arraySort(groupArray((t.occurred_at, if({level:String} = 'channel', t.channel, concat(t.channel, ' / ', t.campaign)), t.kind, t.channel))) AS path
        FROM (
            SELECT customer_id, occurred_at, channel, campaign, kind
            FROM touchpoints_resolved
            WHERE customer_id != '' AND occurred_at < {to:DateTime64(3, 'UTC')}
              AND occurred_at >= {from:DateTime64(3, 'UTC')} - toIntervalDay({lookback_days:Int64})
        ) AS t
        INNER JOIN (
            SELECT source, order_id, customer_id, ordered_at, toFloat64(revenue) AS revenue,
                   toFloat64(revenue) - ifNull(toFloat64(cost), toFloat64(revenue) * (1 - {default_margin:Float64})) AS margin
            FROM orders_resolved
            WHERE status != 'cancelled' AND customer_id != ''
              AND ordered_at >= {from:DateTime64(3, 'UTC')} AND ordered_at < {to:DateTime64(3, 'UTC')}
        ) AS c ON t.customer_id = c.customer_id
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
