-- people_fold_batch: writes into the staging table {stage} (like people_fold, sql/schema/0110) the touchpoints the given parts hold, each at its newest version (FINAL by key, whichever part holds it) with the person it resolves to: identity_map is read only for the source ids any version of those events names, by its key, not whole; FINAL is read in a subquery of its own, as a join beside it makes the engine read it far more slowly (package metrics, rollup_people.go: read by people_stale and people_merge).
INSERT INTO {stage:Identifier} (person, at, source, event_id, channel, kind)
SELECT if(f.customer_id != '', if(m.canonical = '', f.customer_id, m.canonical), concat('anon:', f.anonymous_id)),
       f.occurred_at, toString(f.source), f.event_id, toString(f.channel), toString(f.kind)
FROM (
    SELECT source, customer_id, anonymous_id, occurred_at, event_id, channel, kind
    FROM touchpoints FINAL
    WHERE (source, toDate(occurred_at), event_id) IN (
        SELECT source, toDate(occurred_at), event_id FROM touchpoints WHERE _part IN {parts:Array(String)})
    SETTINGS do_not_merge_across_partitions_select_final = 1
) AS f
LEFT JOIN (
    SELECT source, source_key, canonical FROM identity_map
    WHERE (source, source_key) IN (SELECT source, customer_id FROM touchpoints WHERE (source, toDate(occurred_at), event_id) IN (
        SELECT source, toDate(occurred_at), event_id FROM touchpoints WHERE _part IN {parts:Array(String)}))
) AS m ON f.source = m.source AND f.customer_id = m.source_key
