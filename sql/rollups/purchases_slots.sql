-- purchases_slots: the 15-minute slots whose purchases rows the orders in the given parts can change (package metrics, rollup_views.go): those of every version of each of those orders (a re-sent order may have moved to another time, customer or status).
SELECT DISTINCT toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC') AS s
FROM orders
WHERE (source, order_id) IN (SELECT source, order_id FROM orders WHERE _part IN {order_parts:Array(String)})
