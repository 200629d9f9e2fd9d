-- customer_profiles: the single customer view (customers_resolved, 0039) of the canonical customers {ids}: first known contact details and acquisition, the latest segment, the sources and the number of records merged.
SELECT customer_id, email, phone, first_seen_at, acquisition_channel, acquisition_campaign, country, segment, sources, records
FROM customers_resolved
WHERE customer_id IN {ids:Array(String)}
