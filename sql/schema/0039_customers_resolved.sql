-- customers_resolved: a view, no storage: the single customer view, one row per canonical customer, merging the records of every source that identities maps to it (earliest first sighting, first known contact details and acquisition, the sources it is known in).
CREATE VIEW IF NOT EXISTS customers_resolved AS
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
    LEFT JOIN
    (
        SELECT source, source_key, argMax(customer_id, matched_at) AS canonical
        FROM identities
        GROUP BY source, source_key
    ) AS m ON c.source = m.source AND c.customer_id = m.source_key
)
GROUP BY customer_id
