-- people_fold: MergeTree ORDER BY (source, event_id), no partitions, always empty: the shape of the staging table one people fold writes the touchpoints of its parts into, each at its newest version with the person it resolves to (package metrics, rollup_people.go: people_fold_batch fills it once, and people_stale and people_merge read it, where each had read touchpoints FINAL by key several times over).
CREATE TABLE IF NOT EXISTS people_fold
(
    person   String COMMENT 'canonical customer id, or anon: and the anonymous id',
    at       DateTime64(3, 'UTC') COMMENT 'occurred_at of the touchpoint',
    source   String COMMENT 'source of the touchpoint',
    event_id String COMMENT 'event_id of the touchpoint',
    channel  String COMMENT 'channel of the touchpoint',
    kind     String COMMENT 'kind of the touchpoint'
)
ENGINE = MergeTree
ORDER BY (source, event_id)
COMMENT 'template of a people fold''s staging table (always empty)'
