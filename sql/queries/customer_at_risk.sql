-- customer_at_risk: the candidates for "best customers at risk" in snapshot {as_of} of model {model}: customers whose predicted CLV is in the top fifth of the snapshot (at or above its exact 80th percentile, returned as threshold), who bought again after their first purchase (x > 0: BG/NBD gives P(alive) = 1 before any repeat purchase) and have no non-cancelled order after the calibration end (from {after}, in orders_resolved), highest CLV first. The caller carries P(alive) forward with the snapshot's parameters.
WITH v AS
(
    SELECT customer_id, clv, p_alive, expected_purchases, x, t_x, T
    FROM customer_value FINAL
    WHERE model = {model:String} AND as_of = {as_of:Date}
)
SELECT customer_id, clv, p_alive, expected_purchases, x, t_x, T, (SELECT quantileExact(0.8)(clv) FROM v) AS threshold
FROM v
WHERE x > 0 AND clv >= threshold
  AND customer_id NOT IN (SELECT customer_id FROM orders_resolved WHERE status != 'cancelled' AND ordered_at >= {after:DateTime64(3, 'UTC')})
ORDER BY clv DESC, customer_id
