-- customer_snapshot: the latest snapshot of model {model} in customer_value: its date, calibration end, unit, currency, customers and horizon, with its fitted BG/NBD parameters when clv_fits has them (has_fit = 0 otherwise). No row when the model has no snapshot.
SELECT v.as_of AS as_of, v.calibration_end AS calibration_end, v.unit AS unit, v.currency AS currency, v.customers AS customers, v.horizon_months AS horizon_months,
       f.model != '' AS has_fit, f.r AS r, f.alpha AS alpha, f.a AS a, f.b AS b
FROM
(
    SELECT as_of, any(calibration_end) AS calibration_end, any(unit) AS unit, any(currency) AS currency, count() AS customers, any(horizon_months) AS horizon_months
    FROM customer_value FINAL
    WHERE model = {model:String}
    GROUP BY as_of
    ORDER BY as_of DESC
    LIMIT 1
) AS v
LEFT JOIN (SELECT model, as_of, r, alpha, a, b FROM clv_fits FINAL WHERE model = {model:String}) AS f ON f.as_of = v.as_of
