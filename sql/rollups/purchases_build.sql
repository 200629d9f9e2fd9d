-- purchases_build: the rows of rollup_purchases (sql/schema/0104), version {rv}, for the orders in [{rb_from}, {rb_to}) (and, unless {slots} is empty, in those 15-minute slots only): the purchases view's rows (0105) (package metrics, rollup_views.go: a few months per statement into a staging table whose partitions then replace the rollup's, or a few slots straight into the rollup). A row's next_at is the customer's next row among these, or else (months only) their first order from {rb_to} on; for slots, whose next row may be one not rewritten, purchases_next then corrects it.
SELECT r.slot AS slot, r.customer_id AS customer_id, r.first_at AS first_at, r.last_at AS last_at, r.orders AS orders,
       if(r.nx != toDateTime64('2199-12-31 23:59:59', 3, 'UTC') OR af.customer_id = '', r.nx, af.first_after) AS next_at,
       {rv:UInt64} AS _version, toUInt8(0) AS _deleted
FROM (
    SELECT slot, customer_id, first_at, last_at, orders,
           leadInFrame(first_at, 1, toDateTime64('2199-12-31 23:59:59', 3, 'UTC'))
               OVER (PARTITION BY customer_id ORDER BY slot ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS nx
    FROM (
        SELECT toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC') AS slot, customer_id,
               min(ordered_at) AS first_at, max(ordered_at) AS last_at, toUInt64(count()) AS orders
        FROM orders_resolved
        WHERE status != 'cancelled' AND customer_id != ''
          AND ordered_at >= {rb_from:DateTime64(3, 'UTC')} AND ordered_at < {rb_to:DateTime64(3, 'UTC')}
          AND (empty({slots:Array(DateTime('UTC'))}) OR has({slots:Array(DateTime('UTC'))}, toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC')))
        GROUP BY slot, customer_id
    )
) AS r
LEFT JOIN (
    SELECT customer_id, min(ordered_at) AS first_after
    FROM orders_resolved
    WHERE status != 'cancelled' AND customer_id != '' AND ordered_at >= {rb_to:DateTime64(3, 'UTC')}
      AND empty({slots:Array(DateTime('UTC'))})
    GROUP BY customer_id
) AS af ON af.customer_id = r.customer_id
