-- customer_resolve: the identities that concern {id}, each in its current version (the newest matched_at wins, as the *_resolved views read identities): those of the canonical customer {id} first, newest first, then those whose source key is {id} or whose "source:key" is {id} (a source id given instead of a customer id). At most {limit} rows; own_total counts all of the customer's.
SELECT source, source_key, canonical, current_rule, last_matched_at, countIf(canonical = {id:String}) OVER () AS own_total
FROM
(
    SELECT source, source_key, argMax(customer_id, matched_at) AS canonical, argMax(rule, matched_at) AS current_rule, max(matched_at) AS last_matched_at
    FROM identities
    WHERE (source, source_key) IN (
        SELECT source, source_key FROM identities
        WHERE customer_id = {id:String} OR source_key = {id:String} OR concat(source, ':', source_key) = {id:String})
    GROUP BY source, source_key
)
WHERE canonical = {id:String} OR source_key = {id:String} OR concat(source, ':', source_key) = {id:String}
ORDER BY canonical = {id:String} DESC, last_matched_at DESC, source, source_key
LIMIT {limit:UInt32}
