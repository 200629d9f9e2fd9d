-- customers_resolved (v2): one row per canonical customer, as 0039, with source ids mapped through identity_map instead of aggregating identities on every query.
CREATE OR REPLACE VIEW customers_resolved AS
SELECT
    customer_id,
    argMinIf(email, seen_at, email != '') AS email,
    argMinIf(phone, seen_at, phone != '') AS phone,
    min(seen_at) AS first_seen_at,
    argMinIf(acquisition_channel, seen_at, acquisition_channel != '') AS acquisition_channel,
    argMinIf(acquisition_campaign, seen_at, acquisition_campaign != '') AS acquisition_campaign,
    argMinIf(country, seen_at, country != '') AS country,
    argMaxIf(segment, version_at, segment != '') AS segment,
    arraySort(groupUniqArray(source)) AS sources,
    count() AS records
FROM
(
    SELECT c.* REPLACE (if(m.canonical = '', c.customer_id, m.canonical) AS customer_id), c.first_seen_at AS seen_at, c.updated_at AS version_at
    FROM customers AS c FINAL
    LEFT JOIN identity_map AS m ON c.source = m.source AND c.customer_id = m.source_key
)
GROUP BY customer_id
