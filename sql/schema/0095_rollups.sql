-- rollups: ReplacingMergeTree(updated_at) ORDER BY name, no PARTITION BY, no TTL: one row per rollup table that package metrics derives from a metric definition and keeps as facts land, rewritten (newest updated_at wins) each time its upkeep replaces partitions: the definition it was built from (spec, a hash), its state, the highest block number of each source table's partitions it has folded in (watermark, JSON), a generation counter the answer cache is keyed by, and the server time before which every committed fact is in it (as_of). Tiny, read with FINAL.
CREATE TABLE IF NOT EXISTS rollups
(
    name       String COMMENT 'the rollup table',
    metric     String COMMENT 'the metric it answers',
    spec       String COMMENT 'hash of what defines its rows (model, measure, time, dimensions)',
    status     LowCardinality(String) COMMENT 'building, ready or failed',
    watermark  String COMMENT 'JSON: source table → partition → highest block number folded in',
    generation UInt64 COMMENT 'raised whenever its rows change',
    as_of      DateTime64(3, 'UTC') COMMENT 'every fact committed before this server time is in it',
    error      String COMMENT 'why the last build or upkeep failed',
    updated_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name
COMMENT 'rollups derived from metric definitions: their state and watermarks'
