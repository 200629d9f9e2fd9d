-- purchases_rollup (v2): the purchases view (0105), the same columns and rows, read from rollup_purchases (the newest version of each row, FINAL per partition: a slot never spans two). Package metrics reads it in place of purchases while the rollup is current.
CREATE OR REPLACE VIEW purchases_rollup AS
SELECT slot, customer_id, first_at, last_at, orders, next_at
FROM rollup_purchases FINAL
WHERE _deleted = 0
SETTINGS do_not_merge_across_partitions_select_final = 1
