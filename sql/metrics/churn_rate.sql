-- name: churn_rate
-- title: Churn rate
-- description: Churn rate, kpi-definitions.md: customers lost during the period / customers active at its start, in %; new customers of the period are excluded (they were not active at its start). Non-contractual "active" = at least one non-cancelled order in the window_days before the instant; lost = active at the bucket's start and no longer active at its end. Buckets are clipped to [from, to). Orders are read from the purchases view (per customer and 15-minute slot), kept as a rollup. When no bucket is longer than window_days, each order day x is read with the customer's next order day nx (the view's next_at): it holds the instants in (x, least(x + window_days, nx)], and the customer is lost in the bucket holding x + window_days when nx is not before that bucket's end. Otherwise it is computed from each customer's active spells (the merged [x + 1, x + window_days] of their order days x): active at a bucket's start when a spell holds it, lost in the bucket when the spell holding its start ends before its end and no later spell holds the end.
-- owner: CCO
-- unit: percent
-- format: 0.0
-- polarity: lower_is_better
-- kind: custom
-- param: window_days Int64 = 90 | 1..3650
WITH
    toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS from_day,
    toDate({to:DateTime64(3, 'UTC')}, {tz:String}) AS to_day,
    -- Buckets no longer than window_days (short) need no spells: a customer is active at an instant
    -- t when their last order day x before t has t <= x + window_days, so the order day x (nx: the
    -- customer's next) holds the instants in (x, least(x + window_days, nx)], and the customer is
    -- lost in the bucket holding day x + window_days when nx is not before that bucket's end.
    -- starts and ends are, per day of the range, its bucket's start and the first instant after it
    -- (scalar subqueries: computed once, where an alias would be folded again at each use).
    arrayMap(o -> multiIf({grain:String} = 'day', from_day + o, {grain:String} = 'week', toStartOfWeek(from_day + o, {week_mode:UInt8}),
                          {grain:String} = 'month', toStartOfMonth(from_day + o),
                          {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(from_day + o, -{fy_shift:Int32})), {fy_shift:Int32}),
                          addMonths(toStartOfYear(addMonths(from_day + o, -{fy_shift:Int32})), {fy_shift:Int32})),
             range(toUInt64(greatest(dateDiff('day', from_day, to_day), 0)))) AS day_buckets,
    (SELECT arrayMap(b -> toInt32(greatest(b, from_day)), day_buckets)) AS starts,
    (SELECT arrayMap(b -> toInt32(least(multiIf({grain:String} = 'day', b + 1, {grain:String} = 'week', b + 7, {grain:String} = 'month', addMonths(b, 1),
                                        {grain:String} = 'quarter', addMonths(b, 3), addMonths(b, 12)), to_day)), day_buckets)) AS ends,
    toInt32(from_day) AS f0,
    toInt32(to_day) AS t0,
    {window_days:Int64} >= multiIf({grain:String} = 'day', 1, {grain:String} = 'week', 7, {grain:String} = 'month', 31, {grain:String} = 'quarter', 92, 366) AS short,
    bk AS (
        SELECT bucket,
               greatest(bucket, from_day) AS s,
               least(multiIf({grain:String} = 'day', bucket + 1, {grain:String} = 'week', bucket + 7,
                             {grain:String} = 'month', addMonths(bucket, 1), {grain:String} = 'quarter', addMonths(bucket, 3),
                             addMonths(bucket, 12)), to_day) AS e
        FROM (
            SELECT DISTINCT multiIf({grain:String} = 'day', d, {grain:String} = 'week', toStartOfWeek(d, {week_mode:UInt8}),
                                    {grain:String} = 'month', toStartOfMonth(d),
                                    {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32}),
                                    addMonths(toStartOfYear(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32})) AS bucket
            FROM (SELECT from_day + number AS d FROM numbers(toUInt64(greatest(dateDiff('day', from_day, to_day), 0))))
        )
    ),
    cust AS (
        -- A slot's orders share a local day; first_at and last_at bound the range exactly.
        SELECT customer_id, arrayDistinct(arraySort(groupArray(toInt32(toDate(first_at, {tz:String}))))) AS days
        FROM purchases
        WHERE slot < if(short, toDateTime64(0, 3, 'UTC'), {to:DateTime64(3, 'UTC')})
          AND slot >= {from:DateTime64(3, 'UTC')} - toIntervalDay({window_days:Int64}) - toIntervalMinute(15)
          AND first_at < {to:DateTime64(3, 'UTC')}
          AND last_at >= {from:DateTime64(3, 'UTC')} - toIntervalDay({window_days:Int64})
        GROUP BY customer_id
    ),
    -- The order days of the short case: a row is the last of its local day when the customer's
    -- next slot is on a later day (nd; any day from to_day on is as good as none, 2^31 - 1 when
    -- none before to), counted per (x, nd). Per pair: the first instant it holds (a), the first
    -- after the last it holds (b; 2^31 - 1: none in the range), and the bucket start it is lost at
    -- (l; 0: none). Each case reads no rows in the other's (the slot bound is empty).
    fast AS (
        SELECT if(x < f0, f0, if(x >= t0, 2147483647, ends[x - f0 + 1])) AS a,
               least(x + {window_days:Int64}, nd) AS y,
               if(y < f0, f0, if(y >= t0, 2147483647, ends[y - f0 + 1])) AS b,
               x + {window_days:Int64} AS z,
               if(z >= f0 AND z < t0 AND nd >= ends[z - f0 + 1], starts[z - f0 + 1], 0) AS l,
               c
        FROM (
            SELECT x, nd, count() AS c
            FROM (
                SELECT toInt32(toDate(first_at, {tz:String})) AS x,
                       if(next_at >= {to:DateTime64(3, 'UTC')}, 2147483647, least(toInt32(toDate(next_at, {tz:String})), t0)) AS nd
                FROM purchases
                WHERE slot < if(short, {to:DateTime64(3, 'UTC')}, toDateTime64(0, 3, 'UTC'))
                  AND slot >= {from:DateTime64(3, 'UTC')} - toIntervalDay({window_days:Int64}) - toIntervalMinute(15)
                  AND first_at < {to:DateTime64(3, 'UTC')}
                  AND last_at >= {from:DateTime64(3, 'UTC')} - toIntervalDay({window_days:Int64})
                  AND nd > x
            )
            GROUP BY x, nd
        )
    ),
    -- Active spells [a, b] (day numbers): a customer is active on day t when an order day x has
    -- x < t <= x + window_days; a spell merges these days over consecutive orders.
    spells AS (
        SELECT arrayMap(x -> x + 1, arrayFilter((x, i) -> i = 1 OR x - days[i - 1] > {window_days:Int64}, days, arrayEnumerate(days))) AS a,
               arrayMap(x -> x + {window_days:Int64}, arrayFilter((x, i) -> i = length(days) OR days[i + 1] - x > {window_days:Int64}, days, arrayEnumerate(days))) AS b
        FROM cust
    ),
    -- The instants churn is judged at are from_day, each later bucket start and to_day (as day
    -- numbers). Of each spell: the first (lo; 2^31 - 1: none) and last (hi; 0: none) instant it
    -- holds (lo > hi: none), and the instant after hi.
    bounds AS (
        SELECT arrayMap(x -> if(x - 1 < f0, f0, if(x - 1 >= t0, 2147483647, ends[x - f0])), a) AS lo_all,
               arrayMap(x -> if(x < f0, 0, if(x >= t0, t0, starts[x - f0 + 1])), b) AS hi_all,
               arrayMap(x -> if(x >= t0, t0, if(x < f0, f0, ends[x - f0 + 1])), b) AS after_all
        FROM spells
    ),
    -- The spells that hold an instant; a customer is lost in the bucket starting at a spell's hi
    -- when their next such spell does not start at the instant after it.
    held AS (
        SELECT arrayFilter((l, h) -> l <= h, lo_all, hi_all) AS lo,
               arrayFilter((h, l) -> l <= h, hi_all, lo_all) AS hi,
               arrayFilter((x, l, h) -> l <= h, after_all, lo_all, hi_all) AS after
        FROM bounds
    ),
    -- Per instant: order days or spells starting to hold it (+1), ending before it (-1), and
    -- customers lost in the bucket starting at it; the range's start is always among them.
    moves AS (
        SELECT toDate('1970-01-01') + m.1 AS day, sum(m.2) AS n, sum(m.3) AS lost
        FROM (
            SELECT arrayJoin([(f0, toInt64(0), toUInt64(0)),
                              (a, if(a < b, toInt64(c), 0), toUInt64(0)),
                              (least(b, t0), if(a < b AND b <= t0, -toInt64(c), 0), toUInt64(0)),
                              (if(l = 0, f0, l), toInt64(0), if(l = 0, 0, c))]) AS m
            FROM fast
        )
        GROUP BY m.1
        UNION ALL
        SELECT toDate('1970-01-01') + m.1 AS day, sum(m.2) AS n, sum(m.3) AS lost
        FROM (
            SELECT arrayJoin(arrayConcat(
                       [(f0, toInt64(0), toUInt64(0))],
                       arrayMap(l -> (l, toInt64(1), toUInt64(0)), lo),
                       arrayMap(x -> (x, toInt64(-1), toUInt64(0)), after),
                       arrayMap((h, x, i) -> (h, toInt64(0), toUInt64(h < t0 AND (i = length(lo) OR lo[i + 1] != x))), hi, after, arrayEnumerate(hi)))) AS m
            FROM held
        )
        GROUP BY m.1
    ),
    -- Active at a bucket's start: the running sum of the moves up to it.
    counts AS (
        SELECT bk.bucket AS bucket, sumIf(moves.n, moves.day <= bk.s) AS active, sumIf(moves.lost, moves.day = bk.s) AS lost
        FROM bk CROSS JOIN moves
        GROUP BY bk.bucket
    )
-- counts has every bucket when there is any customer, none otherwise.
SELECT bk.bucket AS bucket, 100 * counts.lost / counts.active AS value
FROM bk
INNER JOIN counts ON counts.bucket = bk.bucket
ORDER BY bucket
