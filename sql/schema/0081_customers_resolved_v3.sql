-- customers_resolved (v3): as 0049, but a source record without a first-seen time (stored as 1970-01-01, e.g. help-desk contacts) no longer wins min(): first_seen_at is the earliest known time of any of the customer's records (1970-01-01 only when none knows), and such records come last when the earliest record's email, phone, channel, campaign and country are picked.
CREATE OR REPLACE VIEW customers_resolved AS
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
    LEFT JOIN identity_map AS m ON c.source = m.source AND c.customer_id = m.source_key
)
GROUP BY customer_id
