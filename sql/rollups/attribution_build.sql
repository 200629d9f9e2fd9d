-- attribution_build: the rows of rollup_attribution (sql/schema/0096), version {rv}, for the orders in [{rb_from}, {rb_to}) (and, unless {slots} is empty, in those 30-minute slots only), at both levels, for lookback_days, half_life_days and default_margin (package metrics, rollup_views.go: a few months per statement into a staging table whose partitions then replace the rollup's, or a few slots straight into the rollup). Each order's touches are read once; per level its path and every model's weights are what the attribution view (0084) computes: the touches sorted by (time, dim, kind, channel) as there, kept as tuples (a few months' paths at a time fit in memory), each model's credit summed per 30-minute UTC slot of the order, dim and channel.
WITH
    paths AS (
        SELECT c.ordered_at AS ordered_at, c.revenue AS revenue, c.margin AS margin,
               groupArray((t.occurred_at, t.channel, t.campaign, t.kind)) AS touches
        FROM (
            SELECT customer_id, occurred_at, toString(channel) AS channel, toString(campaign) AS campaign, toString(kind) AS kind
            FROM touchpoints_resolved
            WHERE customer_id != '' AND occurred_at < {rb_to:DateTime64(3, 'UTC')}
              AND occurred_at >= {rb_from:DateTime64(3, 'UTC')} - toIntervalDay({lookback_days:Int64})
        ) AS t
        INNER JOIN (
            SELECT source, order_id, customer_id, ordered_at, toFloat64(revenue) AS revenue,
                   toFloat64(revenue) - ifNull(toFloat64(cost), toFloat64(revenue) * (1 - {default_margin:Float64})) AS margin
            FROM orders_resolved
            WHERE status != 'cancelled' AND customer_id != ''
              AND ordered_at >= {rb_from:DateTime64(3, 'UTC')} AND ordered_at < {rb_to:DateTime64(3, 'UTC')}
              AND (empty({slots:Array(DateTime('UTC'))}) OR has({slots:Array(DateTime('UTC'))}, toStartOfInterval(ordered_at, toIntervalMinute(30), 'UTC')))
        ) AS c ON t.customer_id = c.customer_id
        WHERE t.occurred_at <= c.ordered_at AND t.occurred_at >= c.ordered_at - toIntervalDay({lookback_days:Int64})
        GROUP BY c.source, c.order_id, c.ordered_at, c.revenue, c.margin
    ),
    leveled AS (
        SELECT ordered_at, revenue, margin, lvl,
               arraySort(arrayMap(x -> (x.1, if(lvl = 'channel', x.2, concat(x.2, ' / ', x.3)), x.4, if(lvl = 'channel', '', x.2)), touches)) AS path
        FROM paths
        ARRAY JOIN ['channel', 'campaign'] AS lvl
    ),
    weighted AS (
        SELECT ordered_at, revenue, margin, lvl, path, n, lead,
               length(arrayDistinct(arrayFilter(k -> k > 0, [1, n, lead]))) AS key_count,
               arrayMap(x -> pow(2, -dateDiff('second', x.1, ordered_at) / 86400 / {half_life_days:Float64}), path) AS decay,
               arraySum(decay) AS decay_sum,
               arrayMap(i -> if(i = 1, 1., 0.), range(1, n + 1)) AS w_first,
               arrayMap(i -> if(i = n, 1., 0.), range(1, n + 1)) AS w_last,
               arrayMap(i -> 1 / n, range(1, n + 1)) AS w_linear,
               arrayMap(i -> multiIf(n = 1, 1., n = 2, 0.5, i = 1 OR i = n, 0.4, 0.2 / (n - 2)), range(1, n + 1)) AS w_u,
               arrayMap(i -> if(i = 1 OR i = n OR i = lead, if(n > key_count, 0.9, 1.) / key_count, 0.1 / (n - key_count)), range(1, n + 1)) AS w_w,
               arrayMap(x -> x / decay_sum, decay) AS w_decay
        FROM (SELECT *, length(path) AS n, indexOf(arrayMap(x -> x.3, path), 'signup') AS lead FROM leveled)
    )
SELECT toStartOfInterval(ordered_at, toIntervalMinute(30), 'UTC') AS slot, lvl AS level,
       tw.1.2 AS dim, if(lvl = 'channel', tw.1.2, tw.1.4) AS channel,
       sum(revenue * tw.2) AS revenue_first_touch, sum(revenue * tw.3) AS revenue_last_touch,
       sum(revenue * tw.4) AS revenue_linear, sum(revenue * tw.5) AS revenue_u_shaped,
       sum(revenue * tw.6) AS revenue_w_shaped, sum(revenue * tw.7) AS revenue_time_decay,
       sum(margin * tw.2) AS gross_profit_first_touch, sum(margin * tw.3) AS gross_profit_last_touch,
       sum(margin * tw.4) AS gross_profit_linear, sum(margin * tw.5) AS gross_profit_u_shaped,
       sum(margin * tw.6) AS gross_profit_w_shaped, sum(margin * tw.7) AS gross_profit_time_decay,
       {rv:UInt64} AS _version, toUInt8(0) AS _deleted
FROM weighted
ARRAY JOIN arrayZip(path, w_first, w_last, w_linear, w_u, w_w, w_decay) AS tw
GROUP BY slot, level, dim, channel
