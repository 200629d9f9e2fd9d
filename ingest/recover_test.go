package ingest_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// fakeRun records a run as another process would have left it: its row
// (status, commit mode, written ageSec seconds ago), a lease (unless host is
// "") renewed leaseAgeSec seconds ago, and, for commit mode run, a staging
// table. It returns the run id and the staging table's name.
func fakeRun(t *testing.T, st *warehouse.Store, status, mode, host string, pid uint32, ageSec, leaseAgeSec int) (string, string) {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	if err := st.Conn.Exec(ctx, `INSERT INTO ingest_runs (run_id, entity, source, record_source, started_at, status, commit_mode, rows_read, rows_loaded, version, updated_at)
		VALUES ({id:String}, 'orders', 'f.csv', 'fake', now64(3) - toIntervalSecond({age:UInt32}), {status:String}, {mode:String}, 7, 7, 1, now64(3) - toIntervalSecond({age:UInt32}))`,
		clickhouse.Named("id", id), clickhouse.Named("status", status), clickhouse.Named("mode", mode), clickhouse.Named("age", uint32(ageSec))); err != nil {
		t.Fatal(err)
	}
	if host != "" {
		if err := st.Conn.Exec(ctx, `INSERT INTO ingest_leases (run_id, owner_host, owner_pid, heartbeat_at) VALUES ({id:String}, {h:String}, {p:UInt32}, now64(3) - toIntervalSecond({age:UInt32}))`,
			clickhouse.Named("id", id), clickhouse.Named("h", host), clickhouse.Named("p", pid), clickhouse.Named("age", uint32(leaseAgeSec))); err != nil {
			t.Fatal(err)
		}
	}
	stage := ""
	if mode == ingest.CommitRun {
		stage = "ingest_stage_orders_" + strings.ReplaceAll(id, "-", "")
		if err := st.CreateStagingTable(ctx, stage, "orders"); err != nil {
			t.Fatal(err)
		}
		if err := st.Conn.Exec(ctx, "INSERT INTO "+stage+" (order_id, ordered_at, revenue, currency, source, ingest_run_id) VALUES ('x1', '2024-01-01', 1, 'EUR', 'fake', {id:String})", clickhouse.Named("id", id)); err != nil {
			t.Fatal(err)
		}
	}
	if mode == ingest.CommitBatch {
		if err := st.Conn.Exec(ctx, "INSERT INTO orders (order_id, ordered_at, revenue, currency, source, ingest_run_id) SELECT concat('b', toString(number)), '2024-01-01', 1, 'EUR', 'fake', {id:String} FROM numbers(3)", clickhouse.Named("id", id)); err != nil {
			t.Fatal(err)
		}
		if err := st.Conn.Exec(ctx, "INSERT INTO quarantine (run_id, entity, source, line, code, reason, raw) VALUES ({id:String}, 'orders', 'fake', 4, 'bad_number', 'x', 'x')", clickhouse.Named("id", id)); err != nil {
			t.Fatal(err)
		}
	}
	return id, stage
}

// TestRecoverLiveness: the start's recovery fails exactly the runs whose
// process ended (same host and its pid gone; any host when its lease is over
// a minute old; no lease and its row over a minute old), and leaves alone
// the runs another process is loading (a fresh lease from another host, a
// run open in this process), with their staging tables.
func TestRecoverLiveness(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	me, _ := os.Hostname()
	const gonePID = 1<<22 + 12345 // above pid_max: no such process
	type want struct {
		id, stage, status, errPart string
		loaded                     int64
	}
	var cases []want
	// Open first: a store's first run recovers it (once per process), before the fakes exist.
	open, err := ingest.NewLoader(ctx, st, ingest.Options{Entity: "orders", Source: "open"}, "open.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(ctx, nil)
	if err := open.Add(ctx, ingest.Record{Fields: map[string]string{"order_id": "open1", "ordered_at": "2024-01-01", "revenue": "1", "currency": "EUR"}}); err != nil {
		t.Fatal(err)
	}
	if err := open.Flush(ctx); err != nil { // staged: its staging tables exist
		t.Fatal(err)
	}
	add := func(status, mode, host string, pid uint32, age, leaseAge int, wantStatus, errPart string, loaded int64) {
		id, stage := fakeRun(t, st, status, mode, host, pid, age, leaseAge)
		cases = append(cases, want{id, stage, wantStatus, errPart, loaded})
	}
	add("running", ingest.CommitRun, "elsewhere", 42, 5, 5, "running", "", 7)                                                                                               // another host, fresh lease: alive
	add("running", ingest.CommitRun, "elsewhere", 42, 300, 90, "failed", "its process (host elsewhere, pid 42) ended", 0)                                                   // lease a minute and a half old
	add("running", ingest.CommitRun, me, gonePID, 5, 5, "failed", "nothing of it was stored", 0)                                                                            // this host, pid gone
	add("running", ingest.CommitRun, me, uint32(os.Getpid()), 5, 5, "failed", "nothing of it was stored", 0)                                                                // this pid, not open here: reused
	add("running", ingest.CommitRun, "", 0, 30, 0, "running", "", 7)                                                                                                        // no lease yet, young
	add("running", ingest.CommitBatch, "elsewhere", 42, 300, 300, "failed", "the 3 rows of the batches it stored are kept (rows_loaded), its 1 reject is in quarantine", 3) // events: what it stored is counted
	add("running", "", "", 0, 3600, 0, "failed", "recorded before converge staged its loads", 7)                                                                            // before leases
	add("committing", ingest.CommitRun, me, gonePID, 5, 5, "succeeded", "", 7)                                                                                              // commit finished

	rec, err := ingest.Recover(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stages, err := st.StagingTables(ctx, "ingest_stage_")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range stages {
		names = append(names, s.Name)
	}
	for i, c := range cases {
		var status, msg string
		var loaded uint64
		if err := st.Conn.QueryRow(ctx, "SELECT toString(status), error, rows_loaded FROM ingest_runs FINAL WHERE run_id = {id:String}", clickhouse.Named("id", c.id)).Scan(&status, &msg, &loaded); err != nil {
			t.Fatal(err)
		}
		if status != c.status || !strings.Contains(msg, c.errPart) || int64(loaded) != c.loaded {
			t.Errorf("case %d: %s %q loaded %d, want %s with %q, loaded %d", i, status, msg, loaded, c.status, c.errPart, c.loaded)
		}
		if c.stage != "" && slices.Contains(names, c.stage) != (c.status == "running") {
			t.Errorf("case %d (%s): staging table kept %v", i, c.status, slices.Contains(names, c.stage))
		}
	}
	if len(rec.Failed) != 5 || len(rec.Committed) != 1 {
		t.Errorf("recovered %+v, want 5 failed and 1 committed", rec)
	}
	if got := queryString(t, st, "SELECT count() FROM orders FINAL WHERE order_id = 'x1'"); got != "1" {
		t.Errorf("the committing run's staged row is visible %s times, want 1", got)
	}
	if sum := open.Summary(); sum.Status != ingest.StatusRunning {
		t.Errorf("the run open in this process: %s", sum.Status)
	}
	var openStages int
	for _, n := range names {
		if strings.HasSuffix(n, strings.ReplaceAll(open.Summary().RunID, "-", "")) {
			openStages++
		}
	}
	if openStages != 2 {
		t.Errorf("the open run has %d staging tables left, want its 2 (orders, ingest_keys)", openStages)
	}
}
