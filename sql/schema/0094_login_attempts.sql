-- login_attempts: MergeTree ORDER BY (email, ip, at), no PARTITION BY, TTL 1 day after a failure and 30 days after a success: one row per password check of a sign-in (attempts the limiter refuses before checking are not written), append-only; the sign-in limiter of package access reads the rows of one account and one address on each attempt (sql/access/login_limits.sql), so its state survives a restart and is shared by every converge on the store.
CREATE TABLE IF NOT EXISTS login_attempts
(
    at    DateTime64(3, 'UTC') COMMENT 'when the password was checked',
    email String COMMENT 'the account named, as signed in with (lower case, at most 254 characters), whether or not it exists',
    ip    String DEFAULT '' COMMENT 'client address',
    ok    Bool COMMENT 'true: signed in; false: wrong password, unknown or disabled account',
    known Bool DEFAULT true COMMENT 'the account exists: the per-address limit counts the failures on accounts that do not',
    INDEX ip_idx ip TYPE bloom_filter GRANULARITY 1
)
ENGINE = MergeTree
ORDER BY (email, ip, at)
TTL toDateTime(at) + toIntervalDay(if(ok, 30, 1))
COMMENT 'sign-in attempts for the sign-in limiter (failures 1 day, successes 30 days)'
