-- people_build: the rows of rollup_people (sql/schema/0108), version {rv}, of the people whose id hashes to {part} of {parts} (package metrics, rollup_people.go: every part into a staging table whose partitions then replace the rollup's). A person's row is over all their touchpoints: the first touch (the earliest, ties by event_id) and its event, and the first signup (2199-12-31 and no event when none).
SELECT person, first_touch, fe.1 AS first_source, fe.2 AS first_event, fe.3 AS first_channel,
       first_signup, se.1 AS signup_source, se.2 AS signup_event, {rv:UInt64} AS _version, toUInt8(0) AS _deleted
FROM (
    SELECT person, min(occurred_at) AS first_touch,
           argMin(tuple(toString(source), event_id, toString(channel)), (occurred_at, event_id)) AS fe,
           if(countIf(kind = 'signup') > 0, minIf(occurred_at, kind = 'signup'), toDateTime64('2199-12-31 23:59:59', 3, 'UTC')) AS first_signup,
           argMinIf(tuple(toString(source), event_id), (occurred_at, event_id), kind = 'signup') AS se
    FROM (
        SELECT if(customer_id != '', customer_id, concat('anon:', anonymous_id)) AS person, occurred_at, source, event_id, channel, kind
        FROM touchpoints_resolved
        WHERE cityHash64(if(customer_id != '', customer_id, concat('anon:', anonymous_id))) % {parts:UInt64} = {part:UInt64}
    )
    GROUP BY person
)
