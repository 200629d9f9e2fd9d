-- name: cohort_retention
-- title: Cohort retention
-- description: Retention (cohort), kpi-definitions.md: cohort = bucket (grain) of a customer's first purchase, for first purchases in [from, to); retention[c, k] = distinct customers of cohort c with a non-cancelled order in bucket c + k / size of cohort c, in %; k = 0 is 100 %. Activity is followed up to {to}. Buckets in the report time zone.
-- owner: CMO
-- unit: percent
-- format: 0.0
-- polarity: higher_is_better
-- kind: custom
WITH buys AS (
    SELECT customer_id,
           multiIf({grain:String} = 'day', d, {grain:String} = 'week', toStartOfWeek(d, {week_mode:UInt8}),
                   {grain:String} = 'month', toStartOfMonth(d),
                   {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32}),
                   addMonths(toStartOfYear(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32})) AS b,
           ordered_at
    FROM (SELECT customer_id, ordered_at, toDate(ordered_at, {tz:String}) AS d
          FROM orders_resolved
          WHERE status != 'cancelled' AND customer_id != '' AND ordered_at < {to:DateTime64(3, 'UTC')})
),
firsts AS (
    SELECT customer_id, argMin(b, ordered_at) AS cohort, min(ordered_at) AS first_at FROM buys GROUP BY customer_id
    HAVING first_at >= {from:DateTime64(3, 'UTC')}
),
sizes AS (SELECT cohort, count() AS size FROM firsts GROUP BY cohort)
SELECT f.cohort AS cohort,
       toUInt32(multiIf({grain:String} = 'day', dateDiff('day', f.cohort, a.b), {grain:String} = 'week', intDiv(dateDiff('day', f.cohort, a.b), 7),
               {grain:String} = 'month', dateDiff('month', f.cohort, a.b), {grain:String} = 'quarter', intDiv(dateDiff('month', f.cohort, a.b), 3),
               intDiv(dateDiff('month', f.cohort, a.b), 12))) AS period,
       any(s.size) AS cohort_size,
       uniqExact(a.customer_id) AS active_customers,
       100 * uniqExact(a.customer_id) / any(s.size) AS retention_pct
FROM firsts AS f
INNER JOIN buys AS a ON a.customer_id = f.customer_id
INNER JOIN sizes AS s ON s.cohort = f.cohort
GROUP BY cohort, period
ORDER BY cohort, period
