-- reports: record one run of a scheduled report when it ends.
INSERT INTO report_runs (run_id, schedule, report, trigger, period, scheduled_at, started_at, finished_at, status, attempts, file, bytes, sha256, emailed_to, error)
VALUES ({run_id:String}, {schedule:String}, {report:String}, {trigger:String}, {period:String}, {scheduled_at:DateTime64(3, 'UTC')},
        {started_at:DateTime64(3, 'UTC')}, {finished_at:DateTime64(3, 'UTC')}, {status:String}, {attempts:UInt8}, {file:String},
        {bytes:UInt64}, {sha256:String}, {emailed_to:Array(String)}, {error:String})
