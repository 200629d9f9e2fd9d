-- customer_slots: the UTC slots of {slot_minutes} minutes of every order of the given canonical customers, through any source id any version of identities gives them (package metrics, rollup_views.go: the slots of a view rollup that an identity change moving facts between these customers can change; a superset is only more work).
SELECT DISTINCT toStartOfInterval(ordered_at, toIntervalMinute({slot_minutes:UInt32}), 'UTC') AS s
FROM orders
WHERE customer_id IN (
    SELECT arrayJoin({customers:Array(String)})
    UNION ALL
    SELECT source_key FROM identities WHERE customer_id IN {customers:Array(String)}
)
