-- customer_tickets: the service tickets of customer {id} (as tickets_resolved, 0035) in their current state, newest first, at most {limit}; total counts all of them.
-- Rows are those the *_resolved view gives to the canonical customer {id}: under a source key identities maps to {id} (customer_source_keys, 0041), or under {id} itself in a source with no identity for it; the first condition only narrows the scan: it finds the keys of the rows stored under one of the customer's source ids (any version, through the customer_id index), so FINAL reads only the granules of those keys and then keeps each key's current version, which must still belong to the customer (a newer version may have moved to another customer).
SELECT f.opened_at AS opened_at, f.source AS source, f.ticket_id AS ticket_id, f.channel AS channel, f.status AS status, f.status_text AS status_text,
       f.priority AS priority, f.topic AS topic, f.first_response_at AS first_response_at, f.resolved_at AS resolved_at,
       f.csat AS csat, count() OVER () AS total
FROM tickets AS f FINAL
WHERE (f.source, f.ticket_id) IN (SELECT source, ticket_id FROM tickets
        WHERE customer_id IN (SELECT source_key FROM customer_source_keys(id = {id:String}) UNION ALL SELECT {id:String}))
  AND ((f.source, f.customer_id) IN (SELECT source, source_key FROM customer_source_keys(id = {id:String}))
       OR f.customer_id = {id:String} AND f.source NOT IN (SELECT source FROM identities WHERE source_key = {id:String}))
ORDER BY f.opened_at DESC, f.source, f.ticket_id
LIMIT {limit:UInt32}
