-- name: roas
-- title: ROAS
-- description: ROAS, kpi-definitions.md (Google Ads conversions_value_per_cost): revenue attributed to marketing touchpoints / ad cost, per bucket (of the order time, and of the spend day) and per channel (level=channel) or channel / campaign (level=campaign). Attribution (HubSpot models, kpi-definitions.md) shares each order's revenue among the customer's touchpoints in the lookback_days before it: first_touch, last_touch, linear, u_shaped (40/20/40; 50/50 with two touches), w_shaped (first, lead = first signup, last share 90 % equally, the others 10 %; all 100 % when there are no others), time_decay (weight 2^(−age/half_life_days)). Orders without a touchpoint in the window are not attributed. Revenue gross of refunds. No value where there is no cost.
-- owner: CMO
-- unit: ratio
-- format: 0.00
-- polarity: higher_is_better
-- kind: custom
-- param: model String = last_touch | first_touch, last_touch, linear, u_shaped, w_shaped, time_decay
-- param: level String = channel | channel, campaign
-- param: lookback_days Int64 = 30
-- param: half_life_days Float64 = 7
WITH
    toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS from_day,
    toDate({to:DateTime64(3, 'UTC')}, {tz:String}) AS to_day,
    paths AS (
        SELECT c.ordered_at AS ordered_at, c.revenue AS revenue, c.margin AS margin,
               arraySort(x -> x.1, groupArray((t.occurred_at, if({level:String} = 'channel', t.channel, concat(t.channel, ' / ', t.campaign)), t.kind))) AS path
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
    credit AS (
        SELECT toDate(ordered_at, {tz:String}) AS d, pw.1 AS dim, revenue * pw.2 AS revenue, margin * pw.2 AS margin
        FROM weighted
        ARRAY JOIN arrayZip(arrayMap(x -> x.2, path), weights) AS pw
    ),
    cost AS (
        SELECT date AS d, if({level:String} = 'channel', channel, concat(channel, ' / ', campaign)) AS dim, toFloat64(spend) AS spend
        FROM marketing_spend FINAL
        WHERE date >= from_day AND date < to_day
    )
SELECT multiIf({grain:String} = 'day', d, {grain:String} = 'week', toStartOfWeek(d, {week_mode:UInt8}),
               {grain:String} = 'month', toStartOfMonth(d),
               {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32}),
               addMonths(toStartOfYear(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32})) AS bucket,
       dim,
       sum(revenue) / sum(spend) AS value
FROM (
    SELECT d, dim, revenue, margin, 0. AS spend FROM credit
    UNION ALL
    SELECT d, dim, 0., 0., spend FROM cost
)
GROUP BY bucket, dim
ORDER BY bucket, dim
