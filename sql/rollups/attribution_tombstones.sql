-- attribution_tombstones: after the rows of version {rv} were written for the slots {slots} (attribution_build), a deleted row for each dim and channel those slots held before and no longer have (package metrics, rollup_views.go), so FINAL drops them.
INSERT INTO rollup_attribution (slot, level, dim, channel, _version, _deleted)
SELECT slot, level, dim, channel, {rv:UInt64}, 1
FROM rollup_attribution
WHERE slot >= arrayMin({slots:Array(DateTime('UTC'))}) AND slot <= arrayMax({slots:Array(DateTime('UTC'))})
  AND has({slots:Array(DateTime('UTC'))}, slot)
GROUP BY slot, level, dim, channel
HAVING max(_version) < {rv:UInt64} AND argMax(_deleted, _version) = 0
