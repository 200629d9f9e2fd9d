-- sessions: ReplacingMergeTree(updated_at) ORDER BY id_hash, no PARTITION BY, TTL 30 days after the last request: one row per dashboard session keyed by the SHA-256 of its id (the cookie's value is never stored), activity (written at most once a minute) and sign-out write a newer row that replaces the old one, looked up by id_hash, read with FINAL; the absolute timeout (at most 30 days) ends every session before its row is dropped.
CREATE TABLE IF NOT EXISTS sessions
(
    id_hash    String COMMENT 'SHA-256 of the session id, hex, never the id',
    email      String COMMENT 'the signed-in user',
    method     LowCardinality(String) DEFAULT 'password' COMMENT 'password | proxy',
    ip         String DEFAULT '' COMMENT 'client address at sign-in',
    user_agent String DEFAULT '' COMMENT 'at sign-in, cut to 256 characters',
    created_at DateTime64(3, 'UTC') COMMENT 'sign-in: the absolute timeout counts from here',
    last_seen  DateTime64(3, 'UTC') COMMENT 'last request, to the minute: the idle timeout counts from here',
    revoked_at Nullable(DateTime64(3, 'UTC')) COMMENT 'signed out or ended by an admin; NULL = active',
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the newest row per id_hash wins'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id_hash
TTL toDateTime(last_seen) + INTERVAL 30 DAY
COMMENT 'dashboard sessions (hashes of ids only)'
