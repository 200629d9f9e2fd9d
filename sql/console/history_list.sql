SELECT toString(id), at, query, kind, duration_ms, rows, limited, ok, error
FROM console_history
WHERE user = {user:String}
ORDER BY at DESC, id
LIMIT {limit:UInt32}
