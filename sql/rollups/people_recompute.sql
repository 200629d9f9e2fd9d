-- people_recompute: the rows of the given people in rollup_people (sql/schema/0108) computed anew from all their touchpoints, version {rv}, and a _deleted row for each kept row the new ones do not replace (the person's first touch is now in another month, or they have no touchpoint any more) (package metrics, rollup_people.go: the people a re-sent first event left, and the customers an identity change moved). A customer's touchpoints are found by the source ids that resolve to them (the customer_id index), an anonymous visitor's by anonymous_id; only the kinds {people} has are read.
INSERT INTO rollup_people (person, first_touch, first_source, first_event, first_channel, first_signup, signup_source, signup_event, _version, _deleted)
WITH
    arrayFilter(x -> NOT startsWith(x, 'anon:'), {people:Array(String)}) AS customers,
    arrayMap(x -> substring(x, 6), arrayFilter(x -> startsWith(x, 'anon:'), {people:Array(String)})) AS anons,
    fresh AS (
        SELECT person, min(at) AS first_touch, argMin(tuple(toString(source), event_id, toString(channel)), (at, event_id)) AS fe,
               if(countIf(kind = 'signup') > 0, minIf(at, kind = 'signup'), toDateTime64('2199-12-31 23:59:59', 3, 'UTC')) AS first_signup,
               argMinIf(tuple(toString(source), event_id), (at, event_id), kind = 'signup') AS se
        FROM (
            SELECT if(f.customer_id != '', if(m.canonical = '', f.customer_id, m.canonical), concat('anon:', f.anonymous_id)) AS person,
                   f.occurred_at AS at, f.source AS source, f.event_id AS event_id, f.channel AS channel, f.kind AS kind
            FROM touchpoints AS f FINAL
            LEFT JOIN identity_map AS m ON f.source = m.source AND f.customer_id = m.source_key
            WHERE notEmpty(customers) AND (f.customer_id IN customers
                      OR f.customer_id IN (SELECT source_key FROM identities WHERE customer_id IN {people:Array(String)}))
               OR notEmpty(anons) AND f.customer_id = '' AND f.anonymous_id IN anons
        )
        WHERE person IN {people:Array(String)}
        GROUP BY person
    ),
    old AS (
        SELECT person, first_touch, first_source, first_event, first_channel, first_signup, signup_source, signup_event
        FROM rollup_people FINAL
        WHERE _deleted = 0 AND person IN {people:Array(String)}
    )
SELECT person, first_touch, fe.1, fe.2, fe.3, first_signup, se.1, se.2, {rv:UInt64}, toUInt8(0)
FROM fresh
UNION ALL
SELECT person, first_touch, first_source, first_event, first_channel, first_signup, signup_source, signup_event, {rv:UInt64}, toUInt8(1)
FROM old
WHERE (person, toYYYYMM(first_touch)) NOT IN (SELECT person, toYYYYMM(first_touch) FROM fresh)
SETTINGS do_not_merge_across_partitions_select_final = 1
