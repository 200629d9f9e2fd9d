package embedded

import "testing"

// What Engine.Writes counts: everything but one statement that can only read.
func TestReadsOnly(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT 1":                                true,
		"  -- c\n/* d */ select * from t":         true,
		"WITH x AS (SELECT 1) SELECT * FROM x":    true,
		"(SELECT 1) UNION ALL (SELECT 2)":         true,
		"SHOW TABLES":                             true,
		"DESCRIBE TABLE t":                        true,
		"EXPLAIN SELECT 1":                        true,
		"EXISTS TABLE t":                          true,
		"INSERT INTO t VALUES (1)":                false,
		"insert into t select 1":                  false,
		"ALTER TABLE t DELETE WHERE 1":            false,
		"TRUNCATE TABLE t":                        false,
		"DROP TABLE t":                            false,
		"CREATE TABLE t (a Int8) ENGINE = Memory": false,
		"OPTIMIZE TABLE t FINAL":                  false,
		"SYSTEM DROP MARK CACHE":                  false,
		"SELECT 1; INSERT INTO t VALUES (1)":      false,
		"RENAME TABLE a TO b":                     false,
		"EXCHANGE TABLES a AND b":                 false,
		"SET max_threads = 1":                     false,
	} {
		if got := scanSQL(sql).readsOnly(); got != want {
			t.Errorf("%q: readsOnly %v, want %v", sql, got, want)
		}
	}
}
