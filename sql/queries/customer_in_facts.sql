-- customer_in_facts: 1 when {id} is the customer id of a fact (order, touchpoint, ticket, survey answer, consent, reward) whose source has no identity for it, so the *_resolved views keep {id} as that customer's id; else 0.
SELECT count() > 0 AS found
FROM
(
    SELECT source, customer_id FROM orders WHERE customer_id = {id:String}
    UNION ALL SELECT source, customer_id FROM touchpoints WHERE customer_id = {id:String}
    UNION ALL SELECT source, customer_id FROM tickets WHERE customer_id = {id:String}
    UNION ALL SELECT source, customer_id FROM survey_responses WHERE customer_id = {id:String}
    UNION ALL SELECT source, customer_id FROM consents WHERE customer_id = {id:String}
    UNION ALL SELECT source, customer_id FROM rewards WHERE customer_id = {id:String}
) AS f
WHERE (f.source, f.customer_id) NOT IN (SELECT source, source_key FROM identities WHERE source_key = {id:String})
