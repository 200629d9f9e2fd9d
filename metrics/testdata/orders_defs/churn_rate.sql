-- name: churn_rate
-- title: Churn rate
-- description: Churn rate, kpi-definitions.md: customers lost during the period / customers active at its start, in %; new customers of the period are excluded (they were not active at its start). Non-contractual "active" = at least one non-cancelled order in the window_days before the instant; lost = active at the bucket's start and no longer active at its end. Buckets are clipped to [from, to).
-- owner: CCO
-- unit: percent
-- format: 0.0
-- polarity: lower_is_better
-- kind: custom
-- param: window_days Int64 = 90 | 1..3650
WITH
    toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS from_day,
    toDate({to:DateTime64(3, 'UTC')}, {tz:String}) AS to_day,
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
        SELECT customer_id, groupUniqArray(toDate(ordered_at, {tz:String})) AS days
        FROM orders_resolved
        WHERE status != 'cancelled' AND customer_id != ''
          AND ordered_at < {to:DateTime64(3, 'UTC')}
          AND ordered_at >= {from:DateTime64(3, 'UTC')} - toIntervalDay({window_days:Int64})
        GROUP BY customer_id
    )
SELECT bucket, 100 * countIf(active_start AND NOT active_end) / countIf(active_start) AS value
FROM (
    SELECT bk.bucket AS bucket,
           arrayExists(x -> x >= bk.s - {window_days:Int64} AND x < bk.s, cust.days) AS active_start,
           arrayExists(x -> x >= bk.e - {window_days:Int64} AND x < bk.e, cust.days) AS active_end
    FROM bk CROSS JOIN cust
)
GROUP BY bucket
ORDER BY bucket
