-- touch_people_rollup: the touch_people view (0107) with the same parameters and columns, read from rollup_people (0108): the newest version of each person's row, FINAL per partition (a row's versions share its month), in the months [from, to) spans. Package metrics reads it in place of touch_people only while the rollup is current.
CREATE OR REPLACE VIEW touch_people_rollup AS
SELECT person, first_touch, toString(first_channel) AS first_channel,
       first_signup <= first_touch + toIntervalDay({window_days:Int64}) AS signed_up
FROM rollup_people FINAL
WHERE _deleted = 0 AND first_touch >= {from:DateTime64(3, 'UTC')} AND first_touch < {to:DateTime64(3, 'UTC')}
SETTINGS do_not_merge_across_partitions_select_final = 1
