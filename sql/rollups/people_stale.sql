-- people_stale: the people of rollup_people (sql/schema/0108) whose kept first touch or first signup is an event the given parts hold at a newer version that changed it: another person (a re-sent touchpoint identified, or moved to another customer), another channel, or no longer a signup (package metrics, rollup_people.go: they are recomputed from all their touchpoints, since a first event that left them cannot be folded in). An event's time never changes (ingest contract), so its kept row is found by that time first.
WITH cur AS (
    SELECT if(f.customer_id != '', if(m.canonical = '', f.customer_id, m.canonical), concat('anon:', f.anonymous_id)) AS person,
           f.occurred_at AS at, toString(f.source) AS source, f.event_id AS event_id, toString(f.channel) AS channel, f.kind AS kind
    FROM touchpoints AS f FINAL
    LEFT JOIN identity_map AS m ON f.source = m.source AND f.customer_id = m.source_key
    WHERE (f.source, toDate(f.occurred_at), f.event_id) IN (
        SELECT source, toDate(occurred_at), event_id FROM touchpoints WHERE _part IN {parts:Array(String)})
    SETTINGS do_not_merge_across_partitions_select_final = 1
),
kept AS (
    SELECT person, first_touch, toString(first_source) AS first_source, first_event, toString(first_channel) AS first_channel,
           first_signup, toString(signup_source) AS signup_source, signup_event
    FROM rollup_people FINAL
    WHERE _deleted = 0 AND (first_touch IN (SELECT at FROM cur) OR first_signup IN (SELECT at FROM cur))
    SETTINGS do_not_merge_across_partitions_select_final = 1
)
SELECT r.person
FROM kept AS r
INNER JOIN cur AS c ON c.source = r.first_source AND c.event_id = r.first_event
WHERE c.person != r.person OR c.channel != r.first_channel OR c.at != r.first_touch
UNION DISTINCT
SELECT r.person
FROM kept AS r
INNER JOIN cur AS c ON c.source = r.signup_source AND c.event_id = r.signup_event
WHERE c.person != r.person OR c.kind != 'signup' OR c.at != r.first_signup
