-- customer_search: the canonical customers with a record (of any source) whose e-mail or source key contains {q} (case-insensitive), or whose phone contains the digits {digits} (digits only; '' = no phone match); a record belongs to the customer identities currently maps it to (else to its own key, as the *_resolved views read it). Customers with an exact match (e-mail, source key or customer id equal to {q}) first, then by id. Page: {limit} rows from {offset}; total counts every matching customer.
SELECT customer_id, max(exact) AS exact_match, count() OVER () AS total
FROM
(
    SELECT if(m.canonical = '', r.source_key, m.canonical) AS customer_id,
           r.exact OR lowerUTF8(m.canonical) = lowerUTF8({q:String}) AS exact
    FROM
    (
        SELECT source, customer_id AS source_key,
               lowerUTF8(email) = lowerUTF8({q:String}) OR lowerUTF8(customer_id) = lowerUTF8({q:String}) AS exact
        FROM customers FINAL
        WHERE positionCaseInsensitiveUTF8(email, {q:String}) > 0
           OR positionCaseInsensitiveUTF8(customer_id, {q:String}) > 0
           OR ({digits:String} != '' AND position(replaceRegexpAll(phone, '[^0-9]', ''), {digits:String}) > 0)
    ) AS r
    LEFT JOIN (SELECT source, source_key, argMax(customer_id, matched_at) AS canonical FROM identities GROUP BY source, source_key) AS m
        ON r.source = m.source AND r.source_key = m.source_key
)
GROUP BY customer_id
ORDER BY exact_match DESC, customer_id
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
