-- people_recompute: the rows of the given people in rollup_people (sql/schema/0108) computed anew from all their touchpoints, version {rv}, and a _deleted row for each kept row the new ones do not replace (the person's first touch is now in another month, or they have no touchpoint any more), both from one full join, so the touchpoints are read once (package metrics, rollup_people.go: the people a re-sent first event left, and the customers an identity change moved). A customer's touchpoints are found by the source ids that resolve to them (the customer_id index), an anonymous visitor's by anonymous_id, in any version: those keys are then read at their newest version (FINAL by key, in a subquery of its own), which must still belong to one of {people}; only the kinds {people} has are looked up, and identity_map only for those source ids.
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
            FROM (
                SELECT source, customer_id, anonymous_id, occurred_at, event_id, channel, kind
                FROM touchpoints FINAL
                WHERE (source, toDate(occurred_at), event_id) IN (
                    SELECT source, toDate(occurred_at), event_id FROM touchpoints
                    WHERE notEmpty(customers) AND (customer_id IN customers
                          OR customer_id IN (SELECT source_key FROM identities WHERE customer_id IN {people:Array(String)}))
                    UNION ALL
                    SELECT source, toDate(occurred_at), event_id FROM touchpoints
                    WHERE notEmpty(anons) AND anonymous_id IN anons)
            ) AS f
            LEFT JOIN (
                SELECT source, source_key, canonical FROM identity_map
                WHERE source_key IN customers OR source_key IN (SELECT source_key FROM identities WHERE customer_id IN {people:Array(String)})
            ) AS m ON f.source = m.source AND f.customer_id = m.source_key
        )
        WHERE person IN {people:Array(String)}
        GROUP BY person
    ),
    old AS (
        SELECT person, first_touch, first_source, first_event, first_channel, first_signup, signup_source, signup_event
        FROM rollup_people FINAL
        WHERE _deleted = 0 AND person IN {people:Array(String)}
    )
SELECT r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, {rv:UInt64}, r.9
FROM (
    SELECT f.person AS fp, f.first_touch AS ft, f.fe AS fe, f.first_signup AS fs, f.se AS se,
           o.person AS op, o.first_touch AS ot, toString(o.first_source) AS osrc, o.first_event AS oev, toString(o.first_channel) AS och,
           o.first_signup AS os, toString(o.signup_source) AS ossrc, o.signup_event AS osev
    FROM fresh AS f
    FULL OUTER JOIN old AS o ON o.person = f.person
)
ARRAY JOIN arrayConcat(
    if(fp != '', [tuple(fp, ft, fe.1, fe.2, fe.3, fs, se.1, se.2, toUInt8(0))], []),
    if(op != '' AND (fp = '' OR toYYYYMM(ot) != toYYYYMM(ft)), [tuple(op, ot, osrc, oev, och, os, ossrc, osev, toUInt8(1))], [])) AS r
SETTINGS do_not_merge_across_partitions_select_final = 1
