-- touch_people: a parameterized view, no storage: the people (identified customers by canonical id, anonymous visitors as 'anon:' || anonymous_id) whose first touchpoint (touchpoints_resolved) falls in [from, to), with that time, the channel of that touch (the earliest, ties broken by event_id) and whether a signup touchpoint follows within window_days of it. A person's first touch is in [from, to) exactly when they have a touchpoint there and none before from, so only [from, to + window_days) is aggregated and the people seen before from are a set to test against. funnel_conversion reads it; package metrics keeps every person's first touch and first signup in rollup_people (0108) as touchpoints land and reads touch_people_rollup (0109), which takes the same parameters and gives the same rows, in its place.
CREATE OR REPLACE VIEW touch_people AS
SELECT person, first_touch, toString(first_channel) AS first_channel,
       has_signup AND first_signup <= first_touch + toIntervalDay({window_days:Int64}) AS signed_up
FROM (
    SELECT if(customer_id != '', customer_id, concat('anon:', anonymous_id)) AS person,
           min(occurred_at) AS first_touch,
           minIf(occurred_at, kind = 'signup') AS first_signup,
           countIf(kind = 'signup') > 0 AS has_signup,
           argMin(channel, (occurred_at, event_id)) AS first_channel
    FROM touchpoints_resolved
    WHERE occurred_at >= {from:DateTime64(3, 'UTC')} AND occurred_at < {to:DateTime64(3, 'UTC')} + toIntervalDay({window_days:Int64})
    GROUP BY person
    HAVING first_touch < {to:DateTime64(3, 'UTC')}
       AND person NOT IN (
           SELECT if(customer_id != '', customer_id, concat('anon:', anonymous_id))
           FROM touchpoints_resolved
           WHERE occurred_at < {from:DateTime64(3, 'UTC')})
)
