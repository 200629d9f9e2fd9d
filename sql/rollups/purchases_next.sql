-- purchases_next: a newer version {rv} of each row of the given customers in rollup_purchases whose next_at is not the first_at of the customer's next row there (package metrics, rollup_views.go: after slots were rewritten or months replaced, the rows before them, in any month, may point at a purchase that moved or is gone).
INSERT INTO rollup_purchases (slot, customer_id, first_at, last_at, orders, next_at, _version, _deleted)
SELECT slot, customer_id, first_at, last_at, orders, nx, {rv:UInt64}, 0
FROM (
    SELECT slot, customer_id, first_at, last_at, orders, next_at,
           leadInFrame(first_at, 1, toDateTime64('2199-12-31 23:59:59', 3, 'UTC'))
               OVER (PARTITION BY customer_id ORDER BY slot ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS nx
    FROM rollup_purchases FINAL
    WHERE _deleted = 0 AND customer_id IN {customers:Array(String)}
    SETTINGS do_not_merge_across_partitions_select_final = 1
)
WHERE nx != next_at
