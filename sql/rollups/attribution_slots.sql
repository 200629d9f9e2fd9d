-- attribution_slots: the 30-minute slots whose attribution rows the facts in the given parts can change (package metrics, rollup_views.go): those of every version of the orders in {order_parts} (a re-sent order may have moved to another slot), and those of the orders that the customers of the touchpoints in {touch_parts} (in any version of them: a re-sent touchpoint may have left a customer) placed within lookback_days after the earliest of them (every source id of each such customer; a superset is only more work).
WITH
    touched AS (
        SELECT if(m.canonical = '', t.customer_id, m.canonical) AS k
        FROM (
            SELECT DISTINCT source, customer_id FROM touchpoints
            WHERE (source, event_id) IN (SELECT source, event_id FROM touchpoints WHERE _part IN {touch_parts:Array(String)})
              AND customer_id != ''
        ) AS t
        LEFT JOIN identity_map AS m ON t.source = m.source AND t.customer_id = m.source_key
    ),
    ids AS (
        SELECT k FROM touched
        UNION ALL
        SELECT source_key FROM identities FINAL WHERE customer_id IN (SELECT k FROM touched)
    ),
    span AS (
        SELECT min(occurred_at) AS lo, max(occurred_at) + toIntervalDay({lookback_days:Int64}) AS hi
        FROM touchpoints WHERE _part IN {touch_parts:Array(String)} AND customer_id != ''
    )
SELECT DISTINCT toStartOfInterval(ordered_at, toIntervalMinute(30), 'UTC') AS s
FROM orders
WHERE (source, order_id) IN (SELECT source, order_id FROM orders WHERE _part IN {order_parts:Array(String)})
UNION DISTINCT
SELECT DISTINCT toStartOfInterval(ordered_at, toIntervalMinute(30), 'UTC') AS s
FROM orders
WHERE notEmpty({touch_parts:Array(String)})
  AND ordered_at >= (SELECT lo FROM span) AND ordered_at <= (SELECT hi FROM span)
  AND customer_id IN (SELECT k FROM ids)
