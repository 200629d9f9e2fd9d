package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stream posts batches of orders to a serve from several clients until stop is closed or the
// server stops answering. Batch b of client c holds the orders "<prefix>-c-b-i".
type stream struct {
	mu     sync.Mutex
	acked  map[string]bool // batch id → a 2xx answer
	failed map[string]int  // batch id → the status of a refusal (0: no answer)
	sent   map[string][]string
}

func newStream() *stream {
	return &stream{acked: map[string]bool{}, failed: map[string]int{}, sent: map[string][]string{}}
}

// batch returns the records and order ids of batch b of client c.
func batch(prefix string, c, b, size int) ([]string, []string) {
	recs, ids := make([]string, size), make([]string, size)
	for i := range size {
		ids[i] = fmt.Sprintf("%s-%d-%d-%d", prefix, c, b, i)
		recs[i] = orderRecord(ids[i], c*100000+b*1000+i)
	}
	return recs, ids
}

// run posts up to batches batches per client (0: until stopped or refused).
func (s *stream) run(base, token, prefix string, clients, size, batches int, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			cl := &http.Client{Timeout: 30 * time.Second}
			for b := 0; batches == 0 || b < batches; b++ {
				select {
				case <-stop:
					return
				default:
				}
				recs, ids := batch(prefix, c, b, size)
				id := fmt.Sprintf("%d-%d", c, b)
				code, _ := postEvents(cl, base, token, "orders", recs)
				s.mu.Lock()
				s.sent[id] = ids
				if code >= 200 && code < 300 {
					s.acked[id] = true
				} else {
					s.failed[id] = code
				}
				s.mu.Unlock()
				if code == 0 {
					return // the server is gone
				}
			}
		})
	}
	wg.Wait()
}

func (s *stream) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// storedOrders reads the order ids and their count under FINAL (what the metrics read) and
// without (the rows on disk).
func storedOrders(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range sqlRows(t, dataDir, "SELECT order_id, count() FROM orders FINAL GROUP BY order_id") {
		n, _ := strconv.Atoi(r[1])
		out[r[0]] = n
	}
	return out
}

// SIGTERM while events stream in: serve stops accepting, answers the requests in flight after
// their flush, flushes and closes the events run, and exits 0; every acknowledged record is in
// the store when it is opened again.
func TestServeShutdownFlushesEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs converge serve in child processes")
	}
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	base := "http://" + addr
	srv := startChild(t, serveEnv(t, dir, addr), "serve")
	waitReady(t, srv, base, time.Minute)
	token := ingestToken(t, dir)

	s := newStream()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.run(base, token, "g", 6, 40, 0, stop); close(done) }()
	for deadline := time.Now().Add(time.Minute); s.ackedCount() < 10; {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 10 batches acknowledged in a minute; log:\n%s", srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM; log:\n%s", code, srv.stderr.String())
	}
	close(stop)
	<-done

	stored := storedOrders(t, dir)
	acked := 0
	for id := range s.acked {
		acked++
		for _, oid := range s.sent[id] {
			if stored[oid] != 1 {
				t.Fatalf("acknowledged order %s (batch %s) stored %d times", oid, id, stored[oid])
			}
		}
	}
	// The events run was closed at shutdown, not left running.
	runs := sqlRows(t, dir, "SELECT status, rows_loaded FROM ingest_runs FINAL WHERE entity = 'orders' AND record_source = 'events'")
	if len(runs) != 1 || runs[0][0] != "succeeded" {
		t.Fatalf("events runs %v, want one, succeeded", runs)
	}
	if n, _ := strconv.Atoi(runs[0][1]); n < acked*40 {
		t.Errorf("the run loaded %d records, %d were acknowledged", n, acked*40)
	}
	t.Logf("%d batches of 40 acknowledged before and during the shutdown, %d refused or unanswered; %d orders stored", acked, len(s.failed), len(stored))
}

// kill -9 during an events stream, a restart, the unacknowledged batches sent again: every
// record is stored exactly once.
func TestEventsKillAndResend(t *testing.T) {
	if testing.Short() {
		t.Skip("runs converge serve in child processes")
	}
	const clients, size, batches = 4, 50, 12
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	base := "http://" + addr
	srv := startChild(t, serveEnv(t, dir, addr), "serve")
	waitReady(t, srv, base, time.Minute)
	token := ingestToken(t, dir)

	s := newStream()
	done := make(chan struct{})
	go func() { s.run(base, token, "k", clients, size, batches, nil); close(done) }()
	for deadline := time.Now().Add(time.Minute); s.ackedCount() < 8; {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 8 batches acknowledged in a minute; log:\n%s", srv.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.stop(t, syscall.SIGKILL)
	<-done
	ackedBefore := s.ackedCount()
	if ackedBefore == clients*batches {
		t.Fatalf("every batch was acknowledged before the kill: the kill came too late to test anything")
	}

	addr2 := freeAddr(t)
	base2 := "http://" + addr2
	srv2 := startChild(t, serveEnv(t, dir, addr2), "serve")
	waitReady(t, srv2, base2, time.Minute)
	cl := &http.Client{Timeout: time.Minute}
	resent := 0
	for c := range clients {
		for b := range batches {
			id := fmt.Sprintf("%d-%d", c, b)
			if s.acked[id] {
				continue
			}
			recs, _ := batch("k", c, b, size)
			if code, body := postEvents(cl, base2, token, "orders", recs); code != http.StatusOK {
				t.Fatalf("resending batch %s: %d %s", id, code, body)
			}
			resent++
		}
	}
	if code := srv2.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, srv2.stderr.String())
	}

	stored := storedOrders(t, dir)
	if len(stored) != clients*batches*size {
		t.Errorf("%d orders stored, want %d", len(stored), clients*batches*size)
	}
	for c := range clients {
		for b := range batches {
			_, ids := batch("k", c, b, size)
			for _, id := range ids {
				if stored[id] != 1 {
					t.Fatalf("order %s stored %d times, want once", id, stored[id])
				}
			}
		}
	}
	// The totals a KPI reads are those of the records sent, each once.
	want := 0.0
	for c := range clients {
		for b := range batches {
			for i := range size {
				want += float64((c*100000+b*1000+i)%500) + 0.25
			}
		}
	}
	got := sqlRows(t, dir, "SELECT toString(sum(revenue)) FROM orders FINAL")
	if g, _ := strconv.ParseFloat(got[0][0], 64); g != want {
		t.Errorf("sum(revenue) %v, want %v", g, want)
	}
	// The run the kill interrupted was marked failed by the second serve's start, with the
	// rows it stored as its loaded count; the second serve's run ended at its shutdown.
	runs := sqlRows(t, dir, `SELECT toString(r.status), r.rows_loaded, ifNull(o.n, 0), r.error
		FROM (SELECT * FROM ingest_runs FINAL WHERE source = 'events') AS r
		LEFT JOIN (SELECT ingest_run_id, count() AS n FROM orders GROUP BY ingest_run_id) AS o ON o.ingest_run_id = r.run_id
		ORDER BY r.started_at SETTINGS join_use_nulls = 1`)
	if len(runs) != 2 || runs[0][0] != "failed" || runs[0][1] != runs[0][2] || runs[0][1] == "0" || !strings.Contains(runs[0][3], "interrupted") ||
		runs[1][0] != "succeeded" || runs[1][1] != runs[1][2] {
		t.Errorf("events runs (status, loaded, rows stored, error): %v; want the killed one failed with its stored rows counted, the second succeeded", runs)
	}
	t.Logf("killed after %d of %d batches were acknowledged; %d resent after the restart", ackedBefore, clients*batches, resent)
}
