-- customer_values: the predictions of model {model} for customer {id}, one per snapshot (as_of), newest first, at most {limit}, with the fitted BG/NBD parameters of the snapshot when clv_fits has them (has_fit = 0 otherwise); total counts the snapshots.
SELECT v.as_of AS as_of, v.calibration_end AS calibration_end, v.unit AS unit, v.x AS x, v.t_x AS t_x, v.T AS T,
       v.expected_purchases AS expected_purchases, v.p_alive AS p_alive, v.expected_spend AS expected_spend, v.clv AS clv,
       v.currency AS currency, v.horizon_months AS horizon_months, count() OVER () AS total,
       f.model != '' AS has_fit, f.r AS r, f.alpha AS alpha, f.a AS a, f.b AS b
FROM customer_value AS v FINAL
LEFT JOIN (SELECT model, as_of, r, alpha, a, b FROM clv_fits FINAL WHERE model = {model:String}) AS f ON f.as_of = v.as_of
WHERE v.model = {model:String} AND v.customer_id = {id:String}
ORDER BY v.as_of DESC
LIMIT {limit:UInt32}
