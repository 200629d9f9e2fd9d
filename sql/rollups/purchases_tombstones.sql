-- purchases_tombstones: after the rows of version {rv} were written for the slots {slots} (purchases_build), a deleted row for each customer those slots held before and no longer have (package metrics, rollup_views.go), so FINAL drops them.
INSERT INTO rollup_purchases (slot, customer_id, _version, _deleted)
SELECT slot, customer_id, {rv:UInt64}, 1
FROM rollup_purchases
WHERE slot >= arrayMin({slots:Array(DateTime('UTC'))}) AND slot <= arrayMax({slots:Array(DateTime('UTC'))})
  AND has({slots:Array(DateTime('UTC'))}, slot)
GROUP BY slot, customer_id
HAVING max(_version) < {rv:UInt64} AND argMax(_deleted, _version) = 0
