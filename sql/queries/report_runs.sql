-- reports: the latest runs of scheduled reports, newest first ({schedule:String} = '' for every schedule).
SELECT run_id, schedule, report, trigger, period, scheduled_at, started_at, finished_at, status, attempts, file, bytes, sha256, emailed_to, error
FROM report_runs
WHERE {schedule:String} = '' OR schedule = {schedule:String}
ORDER BY started_at DESC, schedule
LIMIT {limit:UInt32}
