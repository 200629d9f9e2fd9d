-- name: consented_audience
-- title: Consented reachable audience
-- description: Per channel, customers whose latest consent state for the purpose (argMax(granted, recorded_at) per customer, channel and purpose, across source systems, as of {to}) is granted, and of those the reachable ones (an e-mail address for email, a phone number for sms, phone and whatsapp; other channels need consent only). consents table, design.md data model.
-- owner: CMO
-- unit: count
-- format: #,##0
-- polarity: higher_is_better
-- kind: custom
-- param: purpose String = marketing
SELECT s.channel AS channel,
       countIf(s.granted) AS consented,
       countIf(s.granted AND multiIf(s.channel = 'email', c.email != '', s.channel IN ('sms', 'phone', 'whatsapp'), c.phone != '', 1)) AS reachable
FROM (
    SELECT customer_id, channel, argMax(granted, recorded_at) AS granted
    FROM consents_resolved
    WHERE purpose = {purpose:String} AND recorded_at < {to:DateTime64(3, 'UTC')}
    GROUP BY customer_id, channel
) AS s
LEFT JOIN (SELECT customer_id, email, phone FROM customers_resolved) AS c ON c.customer_id = s.customer_id
GROUP BY channel
ORDER BY channel
