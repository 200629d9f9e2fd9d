-- purchases_build: the rows of rollup_purchases (sql/schema/0099), version {rv}, for the orders in [{rb_from}, {rb_to}) (and, unless {slots} is empty, in those 15-minute slots only): the purchases view's rows (0098) (package metrics, rollup_views.go: a few months per statement into a staging table whose partitions then replace the rollup's, or a few slots straight into the rollup).
SELECT toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC') AS slot, customer_id,
       min(ordered_at) AS first_at, max(ordered_at) AS last_at, toUInt64(count()) AS orders,
       {rv:UInt64} AS _version, toUInt8(0) AS _deleted
FROM orders_resolved
WHERE status != 'cancelled' AND customer_id != ''
  AND ordered_at >= {rb_from:DateTime64(3, 'UTC')} AND ordered_at < {rb_to:DateTime64(3, 'UTC')}
  AND (empty({slots:Array(DateTime('UTC'))}) OR has({slots:Array(DateTime('UTC'))}, toStartOfInterval(ordered_at, toIntervalMinute(15), 'UTC')))
GROUP BY slot, customer_id
