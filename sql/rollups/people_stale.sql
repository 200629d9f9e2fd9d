-- people_stale: the people of rollup_people (sql/schema/0108) whose kept first touch or first signup is an event of the fold's batch {batch} (people_fold_batch: the new parts' events at their newest version) that changed it: another person (a re-sent touchpoint identified, or moved to another customer), another channel, or no longer a signup (package metrics, rollup_people.go: they are recomputed from all their touchpoints, since a first event that left them cannot be folded in). An event's time never changes (ingest contract), so its kept row is found by that time first: a first touch in the months the batch spans (the partition key), a first signup in any month. Each lookup is a query of its own, as one OR over both reads every month.
SELECT DISTINCT person
FROM (
    SELECT r.person AS person
    FROM (
        SELECT person, first_touch, toString(first_source) AS first_source, first_event, toString(first_channel) AS first_channel
        FROM rollup_people FINAL
        WHERE _deleted = 0 AND first_touch IN (SELECT at FROM {batch:Identifier})
    ) AS r
    INNER JOIN {batch:Identifier} AS c ON c.source = r.first_source AND c.event_id = r.first_event
    WHERE c.person != r.person OR c.channel != r.first_channel OR c.at != r.first_touch
    UNION ALL
    SELECT r.person AS person
    FROM (
        SELECT person, first_signup, toString(signup_source) AS signup_source, signup_event
        FROM rollup_people FINAL
        WHERE _deleted = 0 AND first_signup IN (SELECT at FROM {batch:Identifier})
    ) AS r
    INNER JOIN {batch:Identifier} AS c ON c.source = r.signup_source AND c.event_id = r.signup_event
    WHERE c.person != r.person OR c.kind != 'signup' OR c.at != r.first_signup
)
SETTINGS do_not_merge_across_partitions_select_final = 1
