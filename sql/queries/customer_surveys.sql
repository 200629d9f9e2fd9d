-- customer_surveys: the survey answers (NPS 0-10, CSAT 1-5, CES 1-7) of customer {id} (as survey_responses_resolved, 0036), newest first, at most {limit}; total counts all of them.
-- Rows are those the *_resolved view gives to the canonical customer {id}: under a source key identities maps to {id} (customer_source_keys, 0041), or under {id} itself in a source with no identity for it; the first condition only narrows the scan: it finds the keys of the rows stored under one of the customer's source ids (any version, through the customer_id index), so FINAL reads only the granules of those keys and then keeps each key's current version, which must still belong to the customer (a newer version may have moved to another customer).
SELECT f.answered_at AS answered_at, f.source AS source, f.kind AS kind, f.score AS score, f.topic AS topic, f.channel AS channel,
       f.comment AS comment, f.ticket_id AS ticket_id, count() OVER () AS total
FROM survey_responses AS f FINAL
WHERE (f.source, f.response_id) IN (SELECT source, response_id FROM survey_responses
        WHERE customer_id IN (SELECT source_key FROM customer_source_keys(id = {id:String}) UNION ALL SELECT {id:String}))
  AND ((f.source, f.customer_id) IN (SELECT source, source_key FROM customer_source_keys(id = {id:String}))
       OR f.customer_id = {id:String} AND f.source NOT IN (SELECT source FROM identities WHERE source_key = {id:String}))
ORDER BY f.answered_at DESC, f.source, f.response_id
LIMIT {limit:UInt32}
