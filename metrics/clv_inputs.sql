-- clv_inputs: per customer, the purchase days up to the end of calibration (inclusive, UTC days), for BG/NBD and Gamma-Gamma.
-- Purchases on the same day are merged into one (their revenue summed); cancelled and anonymous orders are left out; revenue is net of discounts, before refunds.
SELECT customer_id,
       min(day) AS first_day,
       max(day) AS last_day,
       count() AS days,
       sum(value) - argMin(value, day) AS repeat_value,
       groupUniqArray(cur) AS currencies
FROM (
    SELECT customer_id, toDate(ordered_at) AS day, sum(toFloat64(revenue)) AS value, any(currency) AS cur
    FROM orders_resolved
    WHERE status != 'cancelled' AND customer_id != ''
      AND toDate(ordered_at) <= {calibration_end:Date}
      AND ({currency:String} = '' OR currency = {currency:String})
    GROUP BY customer_id, day
)
GROUP BY customer_id
ORDER BY customer_id
