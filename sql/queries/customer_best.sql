-- customer_best: the customers of snapshot {as_of} of model {model} by predicted CLV, highest first (ties by id), at most {limit}; total counts the snapshot's customers.
SELECT customer_id, clv, p_alive, expected_purchases, x, count() OVER () AS total
FROM customer_value FINAL
WHERE model = {model:String} AND as_of = {as_of:Date}
ORDER BY clv DESC, customer_id
LIMIT {limit:UInt32}
