package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Maps, arrays and tuples print as JSON a spreadsheet user can read (as downloads write them),
// not Go's map[a:1] or [1 2].
func TestRowWriterComposites(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	vals := []any{map[string]uint64{"b": 2, "a": 1}, []int64{1, 2}, []any{int64(1), "x"}, map[string]any{"n": int64(1)}, nil, at, "plain"}
	names := []string{"m", "a", "t", "nt", "z", "at", "s"}
	cases := []struct{ format, want string }{
		{"csv", "m,a,t,nt,z,at,s\n\"{\"\"a\"\":1,\"\"b\"\":2}\",\"[1,2]\",\"[1,\"\"x\"\"]\",\"{\"\"n\"\":1}\",NULL,2026-03-01 09:30:00Z,plain\n"},
		{"json", `{"a":[1,2],"at":"2026-03-01T09:30:00Z","m":{"a":1,"b":2},"nt":{"n":1},"s":"plain","t":[1,"x"],"z":null}` + "\n"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		w := newRowWriter(tc.format, false, &buf, names)
		if err := w.row(vals); err != nil {
			t.Fatal(err)
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.format, buf.String(), tc.want)
		}
		if strings.Contains(buf.String(), "map[") {
			t.Errorf("%s: Go syntax in %q", tc.format, buf.String())
		}
	}
}

// converge sql prints composites as JSON; through the read-only console, a WITH TOTALS row
// after the rows, marked; its CSV guards text cells against formulas unless --csv-raw.
func TestSQLCommandOutput(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if out, code := converge(t, "", "--data-dir", data, "--log-level", "error", "migrate"); code != 0 {
		t.Fatalf("migrate: %d\n%s", code, out)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"sql", "--format", "csv", "SELECT map('a', 1) AS m, [1, 2] AS a, tuple(1, 'x') AS t"},
			"m,a,t\n\"{\"\"a\"\":1}\",\"[1,2]\",\"[1,\"\"x\"\"]\"\n"},
		{[]string{"sql", "--read-only", "--format", "csv", "SELECT number % 2 AS k, count() AS n FROM numbers(4) GROUP BY k WITH TOTALS ORDER BY k"},
			"k,n\n0,2\n1,2\nTOTALS\n0,4\n"},
		{[]string{"sql", "--format", "csv", "SELECT '=HYPERLINK(\"http://x\")' AS `+evil`, -12.5 AS n, '-3' AS s"},
			"'+evil,n,s\n\"'=HYPERLINK(\"\"http://x\"\")\",-12.5,'-3\n"},
		{[]string{"sql", "--format", "csv", "--csv-raw", "SELECT '=1+1' AS f"},
			"f\n=1+1\n"},
		{[]string{"sql", "--read-only", "--format", "json", "SELECT number % 2 AS k, count() AS n FROM numbers(4) GROUP BY k WITH TOTALS ORDER BY k"},
			"{\"k\":0,\"n\":2}\n{\"k\":1,\"n\":2}\n{\"totals\":{\"k\":0,\"n\":4}}\n"},
	}
	for _, tc := range cases {
		out, code := converge(t, "", append([]string{"--data-dir", data, "--log-level", "error"}, tc.args...)...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want the output\n%s\ngot\n%s", tc.args, code, tc.want, out)
		}
	}
}

// The console's keys are checked, each error naming its key.
func TestConsoleConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"result bytes", map[string]string{"CONVERGE_CONSOLE_MAX_RESULT_BYTES": "1KiB"}, "console.max_result_bytes: 1024 is out of range"},
		{"result bytes size", map[string]string{"CONVERGE_CONSOLE_MAX_RESULT_BYTES": "big"}, "console.max_result_bytes"},
		{"block bytes", map[string]string{"CONVERGE_CONSOLE_BLOCK_BYTES": "2GiB"}, "console.block_bytes"},
		{"bytes to read", map[string]string{"CONVERGE_CONSOLE_MAX_BYTES_TO_READ": "-1"}, "console.max_bytes_to_read"},
		{"threads", map[string]string{"CONVERGE_CONSOLE_MAX_THREADS": "-2"}, "console.max_threads"},
		{"priority", map[string]string{"CONVERGE_CONSOLE_PRIORITY": "0"}, "console.priority: 0 is out of range 1..1000"},
		{"per user", map[string]string{"CONVERGE_CONSOLE_MAX_RUNNING_PER_USER": "0"}, "console.max_running_per_user"},
		{"total below per user", map[string]string{"CONVERGE_CONSOLE_MAX_RUNNING": "1"}, "console.max_running: 1 is below console.max_running_per_user (2)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := run(t, context.Background(), "config", "keys")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// On the embedded store one connection is always left to the dashboards and /readyz.
func TestConsoleRunning(t *testing.T) {
	cases := []struct {
		pool, perUser, total int
		remote               bool
		wantPer, wantTotal   int
	}{
		{4, 2, 3, false, 2, 3},
		{2, 2, 3, false, 1, 1},
		{1, 2, 3, false, 1, 1},
		{8, 2, 3, false, 2, 3},
		{2, 2, 3, true, 2, 3}, // a server's connections are not the engine pool's
	}
	for _, c := range cases {
		cfg := &Config{EnginePool: c.pool, Console: ConsoleConfig{MaxRunningPerUser: c.perUser, MaxRunning: c.total}}
		if c.remote {
			cfg.ClickHouse.Addr = "h:8123"
		}
		if per, total := cfg.consoleRunning(); per != c.wantPer || total != c.wantTotal {
			t.Errorf("%+v: %d per person, %d in all; want %d, %d", c, per, total, c.wantPer, c.wantTotal)
		}
	}
}
