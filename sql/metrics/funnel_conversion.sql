-- name: funnel_conversion
-- title: Funnel conversion
-- description: Conversion rate, kpi-definitions.md: funnel stage rate = reaching stage n+1 / at stage n within a fixed window. Stages: 1 touched = people with a first touchpoint in [from, to) (identified customers, and anonymous visitors by anonymous_id, who cannot reach later stages until identified); 2 signed up = a signup touchpoint within window_days of the first touch; 3 first order = signed up, and their first non-cancelled order ever within window_days of the first touch; 4 repeat = reached 3 and a later-day order within window_days of the first order. One row per stage: people, rate from the previous stage and from stage 1, in %, and channel. breakdown = none (default): the four stages over all people, channel ''; breakdown = channel: the four stages per channel instead, a person's channel being the channel of their first touch (the earliest touchpoint, ties broken by event_id; '(none)' when the touchpoint has no channel), so each person is in exactly one channel and the channels' people add up to the overall funnel's. (The parameter is not called by: that name is the dimension breakdown of the query contract.)
-- owner: CMO
-- unit: percent
-- format: 0.0
-- polarity: higher_is_better
-- kind: custom
-- param: window_days Int64 = 30 | 1..365
-- param: breakdown String = none | none, channel
WITH
    -- The people first touched in [from, to), with their first channel and whether they signed
    -- up within window_days (touch_people: kept per person as touchpoints land).
    people AS (
        SELECT person, first_touch, first_channel, signed_up
        FROM touch_people(from = {from:DateTime64(3, 'UTC')}, to = {to:DateTime64(3, 'UTC')}, window_days = {window_days:Int64})
    ),
    buyers AS (
        -- A slot's orders share a UTC day, and its first order is the earliest.
        SELECT customer_id, min(first_at) AS first_order,
               arrayMin(arrayFilter(d -> d > toDate(min(first_at)), groupArray(toDate(first_at)))) AS second_day,
               uniqExact(toDate(first_at)) > 1 AS has_second
        FROM purchases
        WHERE customer_id IN (SELECT person FROM people WHERE NOT startsWith(person, 'anon:'))
        GROUP BY customer_id
    ),
    flags AS (
        SELECT p.person AS person,
               if(p.first_channel = '', '(none)', toString(p.first_channel)) AS channel,
               1 AS s1,
               p.signed_up AS s2,
               s2 AND b.customer_id != '' AND b.first_order >= p.first_touch AND b.first_order <= p.first_touch + toIntervalDay({window_days:Int64}) AS s3,
               s3 AND b.has_second AND b.second_day <= toDate(b.first_order) + {window_days:Int64} AS s4
        FROM people AS p
        LEFT JOIN buyers AS b ON b.customer_id = p.person
    ),
    counts AS (
        -- One pass over the people: every channel and the total (one row even with no people).
        SELECT ch AS channel, n1, n2, n3, n4
        FROM (
            SELECT if(grouping(channel) = 1, '', channel) AS ch, grouping(channel) = 1 AS total,
                   count() AS n1, countIf(s2) AS n2, countIf(s3) AS n3, countIf(s4) AS n4
            FROM flags GROUP BY GROUPING SETS ((channel), ())
        )
        WHERE total = ({breakdown:String} = 'none')
    )
SELECT stage, name, people, rate_from_previous_pct, rate_from_start_pct, channel
FROM (
    SELECT channel, arrayJoin([
        (1, 'touched', n1, 100., 100.),
        (2, 'signed_up', n2, 100 * n2 / n1, 100 * n2 / n1),
        (3, 'first_order', n3, 100 * n3 / n2, 100 * n3 / n1),
        (4, 'repeat', n4, 100 * n4 / n3, 100 * n4 / n1)]) AS t,
        t.1 AS stage, t.2 AS name, t.3 AS people, t.4 AS rate_from_previous_pct, t.5 AS rate_from_start_pct
    FROM counts
)
ORDER BY channel, stage
