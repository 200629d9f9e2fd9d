-- rollup_people: ReplacingMergeTree(_version, _deleted) ORDER BY person, PARTITION BY toYYYYMM(first_touch), no TTL: every person's first touchpoint and first signup over all their touchpoints (touchpoints_resolved), with the events that give them, kept as touchpoints land (package metrics, rollup_people.go). New touchpoints fold in by taking the earlier of the kept and the new (a first touch and a first signup only move earlier); a re-sent touchpoint that changes a kept first event, and the customers an identity change moves, are recomputed from their touchpoints. A person whose first touch moves to an earlier month gets a _deleted row in the month it left, so readers take FINAL per partition and a range reads the months it spans.
CREATE TABLE IF NOT EXISTS rollup_people
(
    person        String COMMENT 'canonical customer id, or anon: and the anonymous id',
    first_touch   DateTime64(3, 'UTC') COMMENT 'the earliest touchpoint',
    first_source  LowCardinality(String) COMMENT 'source of the first touchpoint',
    first_event   String COMMENT 'event_id of the first touchpoint (the earliest; ties by event_id)',
    first_channel LowCardinality(String) COMMENT 'channel of the first touchpoint',
    first_signup  DateTime64(3, 'UTC') COMMENT 'the earliest signup touchpoint; 2199-12-31 when none',
    signup_source LowCardinality(String) COMMENT 'source of the first signup ('''' when none)',
    signup_event  String COMMENT 'event_id of the first signup ('''' when none)',
    _version      UInt64 COMMENT 'the upkeep that wrote the row: the newest wins',
    _deleted      UInt8 COMMENT '1: the person''s first touch left this month'
)
ENGINE = ReplacingMergeTree(_version, _deleted)
PARTITION BY toYYYYMM(first_touch)
ORDER BY person
COMMENT 'first touch and first signup per person, kept as touchpoints land'
