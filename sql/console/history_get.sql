SELECT toString(id), at, query, kind, duration_ms, rows, limited, ok, error
FROM console_history
WHERE user = {user:String} AND id = toUUIDOrZero({id:String})
LIMIT 1
