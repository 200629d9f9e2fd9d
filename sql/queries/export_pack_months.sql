-- The first and the last month with orders (cancelled ones aside) in the report time zone
-- {tz:String}, and how many orders there are: the months a finance pack can be asked for.
SELECT toStartOfMonth(min(ordered_at), {tz:String}) AS first,
       toStartOfMonth(max(ordered_at), {tz:String}) AS last,
       count() AS orders
FROM orders_resolved
WHERE status != 'cancelled'
