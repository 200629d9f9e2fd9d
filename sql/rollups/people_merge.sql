-- people_merge: folds the fold's batch {batch} (people_fold_batch: the events of the new touchpoint parts at their newest version, with their person) into rollup_people (sql/schema/0108), version {rv} (package metrics, rollup_people.go). Each person's earliest touch and signup among them is compared with their kept row, and a row is written only where one moved earlier (or the person is new), with a _deleted row in the month a first touch left (both from one pass over the join, so the kept rows are read once). The people in {skip} are left out: they are recomputed from all their touchpoints instead (people_recompute). A first touch and a first signup only move earlier as touchpoints are added, so folding the same parts in twice writes nothing more.
INSERT INTO rollup_people (person, first_touch, first_source, first_event, first_channel, first_signup, signup_source, signup_event, _version, _deleted)
WITH
    new AS (
        SELECT person, min(at) AS ft, argMin(tuple(toString(source), event_id, toString(channel)), (at, event_id)) AS fe,
               if(countIf(kind = 'signup') > 0, minIf(at, kind = 'signup'), toDateTime64('2199-12-31 23:59:59', 3, 'UTC')) AS fs,
               argMinIf(tuple(toString(source), event_id), (at, event_id), kind = 'signup') AS se
        FROM {batch:Identifier}
        WHERE NOT has({skip:Array(String)}, person)
        GROUP BY person
    ),
    old AS (
        SELECT person, first_touch, first_source, first_event, toString(first_channel) AS first_channel,
               first_signup, signup_source, signup_event
        FROM rollup_people FINAL
        WHERE _deleted = 0 AND person IN (SELECT person FROM new)
    ),
    both AS (
        SELECT n.person AS person, o.person != '' AS kept,
               o.first_touch AS old_touch, o.first_source AS old_source, o.first_event AS old_event, o.first_channel AS old_channel,
               o.first_signup AS old_signup, o.signup_source AS old_signup_source, o.signup_event AS old_signup_event,
               kept AND (o.first_touch, o.first_event) <= (n.ft, n.fe.2) AS keep_touch,
               kept AND (o.first_signup, o.signup_event) <= (n.fs, n.se.2) AS keep_signup,
               if(keep_touch, o.first_touch, n.ft) AS first_touch,
               if(keep_touch, o.first_source, n.fe.1) AS first_source,
               if(keep_touch, o.first_event, n.fe.2) AS first_event,
               if(keep_touch, o.first_channel, n.fe.3) AS first_channel,
               if(keep_signup, o.first_signup, n.fs) AS first_signup,
               if(keep_signup, o.signup_source, n.se.1) AS signup_source,
               if(keep_signup, o.signup_event, n.se.2) AS signup_event
        FROM new AS n
        LEFT JOIN old AS o ON o.person = n.person
    )
SELECT r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, {rv:UInt64}, r.9
FROM both
ARRAY JOIN arrayConcat(
    if(NOT (keep_touch AND keep_signup),
       [tuple(person, first_touch, toString(first_source), first_event, toString(first_channel), first_signup, toString(signup_source), signup_event, toUInt8(0))], []),
    if(kept AND toYYYYMM(old_touch) != toYYYYMM(first_touch),
       [tuple(person, old_touch, toString(old_source), old_event, toString(old_channel), old_signup, toString(old_signup_source), old_signup_event, toUInt8(1))], [])) AS r
SETTINGS do_not_merge_across_partitions_select_final = 1
