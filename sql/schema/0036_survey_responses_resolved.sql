-- survey_responses_resolved: a view, no storage: survey_responses (deduplicated with FINAL) with customer_id mapped to the canonical customer by identities; a source id with no identity stays as it is. KPIs that count customers read it, so one person with several source ids is one customer.
CREATE VIEW IF NOT EXISTS survey_responses_resolved AS
SELECT f.* REPLACE (if(m.canonical = '', f.customer_id, m.canonical) AS customer_id)
FROM survey_responses AS f FINAL
LEFT JOIN
(
    SELECT source, source_key, argMax(customer_id, matched_at) AS canonical
    FROM identities
    GROUP BY source, source_key
) AS m ON f.source = m.source AND f.customer_id = m.source_key
