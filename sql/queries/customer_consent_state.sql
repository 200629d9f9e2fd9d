-- customer_consent_state: the current consent of customer {id} per channel and purpose: the latest record of its whole history (argMax by recorded_at, as the consented_audience metric reads it), when and where it was recorded.
-- Rows are those the *_resolved view gives to the canonical customer {id}: under a source key identities maps to {id} (customer_source_keys, 0041), or under {id} itself in a source with no identity for it; the first condition only narrows the scan (customer_id index).
SELECT f.channel AS channel, f.purpose AS purpose, argMax(f.granted, f.recorded_at) AS granted, max(f.recorded_at) AS since,
       argMax(f.source_system, f.recorded_at) AS source_system
FROM consents AS f FINAL
WHERE f.customer_id IN (SELECT source_key FROM customer_source_keys(id = {id:String}) UNION ALL SELECT {id:String})
  AND ((f.source, f.customer_id) IN (SELECT source, source_key FROM customer_source_keys(id = {id:String}))
       OR f.customer_id = {id:String} AND f.source NOT IN (SELECT source FROM identities WHERE source_key = {id:String}))
GROUP BY f.channel, f.purpose
ORDER BY f.channel, f.purpose
