-- customer_profiles: the single customer view (customers_resolved, 0081) of the canonical customers {ids}: first known contact details and acquisition, the latest segment, the sources and the number of records merged.
-- The view's SELECT over only the customer records that can belong to {ids}: those under a source key identities has ever mapped to one of {ids} or that is one of {ids} (candidate_keys: the customers key, source and customer_id, finds them), and those under one of {ids} itself; the join reads identity_map only for those keys. The final WHERE keeps the records that belong to {ids} now, so the answer is the view's (TestProfilesMatchView holds the two together); reading the view for a few customers resolved every customer.
WITH candidate_keys AS (SELECT source, source_key FROM identities WHERE customer_id IN {ids:Array(String)} OR source_key IN {ids:Array(String)})
SELECT
    customer_id,
    argMinIf(email, seen_at, email != '') AS email,
    argMinIf(phone, seen_at, phone != '') AS phone,
    if(min(seen_at) = toDateTime64('2299-12-31 00:00:00', 3, 'UTC'), toDateTime64(0, 3, 'UTC'), min(seen_at)) AS first_seen_at,
    argMinIf(acquisition_channel, seen_at, acquisition_channel != '') AS acquisition_channel,
    argMinIf(acquisition_campaign, seen_at, acquisition_campaign != '') AS acquisition_campaign,
    argMinIf(country, seen_at, country != '') AS country,
    argMaxIf(segment, version_at, segment != '') AS segment,
    arraySort(groupUniqArray(source)) AS sources,
    count() AS records
FROM
(
    SELECT c.* REPLACE (if(m.canonical = '', c.customer_id, m.canonical) AS customer_id),
        if(c.first_seen_at <= toDateTime64(0, 3, 'UTC'), toDateTime64('2299-12-31 00:00:00', 3, 'UTC'), c.first_seen_at) AS seen_at,
        c.updated_at AS version_at
    FROM customers AS c FINAL
    LEFT JOIN (SELECT source, source_key, canonical FROM identity_map WHERE (source, source_key) IN (SELECT * FROM candidate_keys)) AS m
        ON c.source = m.source AND c.customer_id = m.source_key
    WHERE (c.source, c.customer_id) IN (SELECT * FROM candidate_keys) OR c.customer_id IN {ids:Array(String)}
)
WHERE customer_id IN {ids:Array(String)}
GROUP BY customer_id
