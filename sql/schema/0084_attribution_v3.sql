-- attribution (v3): as 0082 (parameters, rows, models and the order of a path's touches unchanged; see 0050's header), in less memory. The year's paths are all held at once by the GROUP BY, and 0082 kept each touch as a tuple of its time and three strings (dim, kind, channel). Here touch_keys lists, in order, every (dim, kind, channel) a touch of the range may have (channel '' at level 'channel', where it is the dim); a touch is kept as one UInt128, its time in ms (shifted to stay positive) above its place in that list, so sorting the numbers sorts the touches by (time, dim, kind, channel) as 0082 did; the path is decoded back to the same tuples after the GROUP BY. The list is read from touchpoints in the same range (no FINAL: a superset of the values touchpoints_resolved gives), so every touch has its place; only a touch inserted while the statement runs, with a combination new to the range, could miss it and be credited to dim '' in that one answer (the insert changes the answer cache's key, so the next answer is computed again). On the large demo merged to one part per month, a year at month grain (29.5M touches on 4.7M orders) failed at max_memory_usage 4.8e9 with 0082 and ran in it with this view; every model at both levels gave the same sums per bucket, dim and channel (to 4e-8) over a month. With 0082 the overview over a year had failed in `converge bench` on that store: marketing_roi over the per-query limit (5.89 GiB on 24 GiB).
CREATE OR REPLACE VIEW attribution AS
WITH
    toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS from_day,
    toDate({to:DateTime64(3, 'UTC')}, {tz:String}) AS to_day,
    touch_keys AS (
        SELECT groupArray((touch_dim, touch_kind, touch_channel)) AS list
        FROM (
            SELECT DISTINCT if({level:String} = 'channel', channel, concat(channel, ' / ', campaign)) AS touch_dim, toString(kind) AS touch_kind,
                   if({level:String} = 'channel', '', channel) AS touch_channel
            FROM touchpoints
            WHERE occurred_at < {to:DateTime64(3, 'UTC')}
              AND occurred_at >= {from:DateTime64(3, 'UTC')} - toIntervalDay({lookback_days:Int64})
            ORDER BY touch_dim, touch_kind, touch_channel
        )
    ),
    paths AS (
        SELECT c.ordered_at AS ordered_at, c.revenue AS revenue, c.margin AS margin,
               arrayMap(x -> (fromUnixTimestamp64Milli(toInt64(toInt128(bitShiftRight(x, 32)) - 4611686018427387904), 'UTC'),
                              (SELECT list FROM touch_keys)[toUInt32(bitAnd(x, 4294967295))].1, (SELECT list FROM touch_keys)[toUInt32(bitAnd(x, 4294967295))].2, (SELECT list FROM touch_keys)[toUInt32(bitAnd(x, 4294967295))].3),
                        arraySort(groupArray(
                            bitShiftLeft(toUInt128(toInt128(toUnixTimestamp64Milli(t.occurred_at)) + 4611686018427387904), 32)
                            + transform(concat(if({level:String} = 'channel', t.channel, concat(t.channel, ' / ', t.campaign)), '\0', toString(t.kind), '\0',
                                               if({level:String} = 'channel', '', t.channel)),
                                        arrayMap(tk -> concat(tk.1, '\0', tk.2, '\0', tk.3), (SELECT list FROM touch_keys)),
                                        range(1, 1 + length((SELECT list FROM touch_keys))), 0)))) AS path
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
               length(arrayDistinct(arrayFilter(k -> k > 0, [1, n, lead]))) AS key_count,
               arraySum(arrayMap(x -> pow(2, -dateDiff('second', x.1, ordered_at) / 86400 / {half_life_days:Float64}), path)) AS decay_sum,
               arrayMap(i -> multiIf(
                   {model:String} = 'first_touch', if(i = 1, 1., 0.),
                   {model:String} = 'last_touch', if(i = n, 1., 0.),
                   {model:String} = 'linear', 1 / n,
                   {model:String} = 'u_shaped', multiIf(n = 1, 1., n = 2, 0.5, i = 1 OR i = n, 0.4, 0.2 / (n - 2)),
                   {model:String} = 'w_shaped', if(i = 1 OR i = n OR i = lead,
                                                   if(n > key_count, 0.9, 1.) / key_count,
                                                   0.1 / (n - key_count)),
                   pow(2, -dateDiff('second', path[i].1, ordered_at) / 86400 / {half_life_days:Float64}) / decay_sum
               ), range(1, n + 1)) AS weights
        FROM (SELECT *, length(path) AS n, indexOf(arrayMap(x -> x.3, path), 'signup') AS lead FROM paths)
    ),
    rows AS (
        SELECT toDate(ordered_at, {tz:String}) AS d, pw.1 AS channel, pw.2 AS dim, revenue * pw.3 AS revenue, margin * pw.3 AS gross_profit, 0. AS spend
        FROM weighted
        ARRAY JOIN arrayZip(arrayMap(x -> if({level:String} = 'channel', x.2, x.4), path), arrayMap(x -> x.2, path), weights) AS pw
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
