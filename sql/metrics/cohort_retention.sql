-- name: cohort_retention
-- title: Cohort retention
-- description: Retention (cohort), kpi-definitions.md: cohort = bucket (grain) of a customer's first purchase, for first purchases in [from, to); retention[c, k] = distinct customers of cohort c with a non-cancelled order in bucket c + k / size of cohort c, in %; k = 0 is 100 %. Activity is followed up to {to}. Buckets in the report time zone. Orders are read from the purchases view (per customer and 15-minute slot), kept as a rollup.
-- owner: CMO
-- unit: percent
-- format: 0.0
-- polarity: higher_is_better
-- kind: custom
-- One pass over the purchases: per customer, the first purchase before {to} and the buckets of
-- those since {from} (a slot's orders share a local day, and its first order is the earliest).
WITH members AS (
    SELECT customer_id, min(first_at) AS first_buy, groupUniqArrayIf(multiIf({grain:String} = 'day', toDate(first_at, {tz:String}), {grain:String} = 'week', toStartOfWeek(toDate(first_at, {tz:String}), {week_mode:UInt8}),
                   {grain:String} = 'month', toStartOfMonth(toDate(first_at, {tz:String})),
                   {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(toDate(first_at, {tz:String}), -{fy_shift:Int32})), {fy_shift:Int32}),
                   addMonths(toStartOfYear(addMonths(toDate(first_at, {tz:String}), -{fy_shift:Int32})), {fy_shift:Int32})), first_at >= {from:DateTime64(3, 'UTC')}) AS buckets
    FROM purchases
    WHERE slot < {to:DateTime64(3, 'UTC')} AND first_at < {to:DateTime64(3, 'UTC')}
    GROUP BY customer_id
    HAVING first_buy >= {from:DateTime64(3, 'UTC')}
),
cells AS (
    SELECT cohort, b, count() AS n
    FROM (SELECT multiIf({grain:String} = 'day', toDate(first_buy, {tz:String}), {grain:String} = 'week', toStartOfWeek(toDate(first_buy, {tz:String}), {week_mode:UInt8}),
                   {grain:String} = 'month', toStartOfMonth(toDate(first_buy, {tz:String})),
                   {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(toDate(first_buy, {tz:String}), -{fy_shift:Int32})), {fy_shift:Int32}),
                   addMonths(toStartOfYear(addMonths(toDate(first_buy, {tz:String}), -{fy_shift:Int32})), {fy_shift:Int32})) AS cohort, arrayJoin(buckets) AS b FROM members)
    GROUP BY cohort, b
)
-- Every member buys in their cohort's own bucket (period 0), so its count is the cohort's size.
SELECT cohort,
       toUInt32(multiIf({grain:String} = 'day', dateDiff('day', cohort, b), {grain:String} = 'week', intDiv(dateDiff('day', cohort, b), 7),
               {grain:String} = 'month', dateDiff('month', cohort, b), {grain:String} = 'quarter', intDiv(dateDiff('month', cohort, b), 3),
               intDiv(dateDiff('month', cohort, b), 12))) AS period,
       sum(if(b = cohort, n, 0)) OVER (PARTITION BY cohort) AS cohort_size,
       n AS active_customers,
       100 * n / cohort_size AS retention_pct
FROM cells
ORDER BY cohort, period
