-- ingest_keys: ReplacingMergeTree(loaded_at) ORDER BY (entity, source, key), no PARTITION BY, no TTL: one row per loaded record key with the hash of its content, so that ingest can tell a record already in the store with identical content (a duplicate, not written again) from a changed one (written, the newer version wins), written after the facts it describes, so a crash between the two only makes the next run rewrite identical rows (harmless under ReplacingMergeTree).
-- Read with argMax(hash, loaded_at) per key.
CREATE TABLE IF NOT EXISTS ingest_keys
(
    entity        LowCardinality(String) COMMENT 'canonical entity (table) the record was loaded into',
    source        LowCardinality(String) COMMENT 'source of the record (preset name, file, events)',
    key           String COMMENT 'record id (or natural key) within entity and source',
    hash          UInt64 COMMENT 'xxhash64 of the canonical content, without load bookkeeping',
    ingest_run_id LowCardinality(String) DEFAULT '' COMMENT 'run that wrote the key (few per table, hence LowCardinality)',
    loaded_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins'
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (entity, source, key)
COMMENT 'content hashes of loaded records, for duplicate detection across runs'
