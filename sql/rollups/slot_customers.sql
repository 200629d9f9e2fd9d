-- slot_customers: the customers of every row, any version (deleted ones too), a view rollup table holds in the given slots (package metrics, rollup_views.go: after the slots were rewritten, the customers they had or have).
SELECT DISTINCT customer_id
FROM {table:Identifier}
WHERE slot >= arrayMin({slots:Array(DateTime('UTC'))}) AND slot <= arrayMax({slots:Array(DateTime('UTC'))})
  AND has({slots:Array(DateTime('UTC'))}, slot)
