-- ingest_leases: ReplacingMergeTree(heartbeat_at) ORDER BY run_id, no PARTITION BY, TTL 7 days: a run that is open renews its lease every 10 s (the process's host and pid, the server's time), so the next start of converge can tell a run whose process ended (killed, crashed) from one another process is still loading into a shared server: dead when its host is this host and its pid is gone, or when its lease is older than a minute. Read with argMax per run_id; kept a week, long after any run it describes has ended.
CREATE TABLE IF NOT EXISTS ingest_leases
(
    run_id       String,
    owner_host   String COMMENT 'host name of the process running the run',
    owner_pid    UInt32 COMMENT 'process id of that process on its host',
    heartbeat_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'server time of the heartbeat'
)
ENGINE = ReplacingMergeTree(heartbeat_at)
ORDER BY run_id
TTL toDateTime(heartbeat_at) + INTERVAL 7 DAY
COMMENT 'heartbeats of open ingest runs: who runs each, and when it last said so'
