INSERT INTO console_history (user, at, query, kind, duration_ms, rows, limited, ok, error)
VALUES ({user:String}, {at:DateTime64(3, 'UTC')}, {query:String}, {kind:String}, {duration_ms:UInt32}, {rows:UInt64},
        {limited:Bool}, {ok:Bool}, {error:String})
