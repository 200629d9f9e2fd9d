-- users: ReplacingMergeTree(updated_at) ORDER BY email, no PARTITION BY, no TTL: one row per login, a change (role, password, disabled) is a new row with a newer updated_at that replaces the old one, tiny, read with FINAL, disable instead of delete so the audit log still resolves.
CREATE TABLE IF NOT EXISTS users
(
    email         String COMMENT 'login, lower case',
    name          String DEFAULT '',
    role          LowCardinality(String) COMMENT 'viewer | analyst | admin',
    password_hash String COMMENT 'password hash in PHC string format, never the password',
    created_at    DateTime64(3, 'UTC') DEFAULT now64(3),
    disabled      Bool DEFAULT false,
    updated_at    DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the newest row per email wins'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY email
COMMENT 'dashboard users'
