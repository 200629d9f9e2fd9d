package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/events"
	"github.com/converge-dev/converge/warehouse"
)

// scratch opens a fresh, migrated database on the store's engine and returns
// it with a function that drops it.
func scratch(ctx context.Context, cfg *Config) (*warehouse.Store, func(), error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := "bench_" + hex.EncodeToString(b[:])
	st, err := warehouse.OpenOnEngine(ctx, cfg.Store.Engine, db, nil)
	if err != nil {
		return nil, nil, err
	}
	drop := func() {
		// Plain DROP: DROP … SYNC can hang in this chDB build (docs/engine.md).
		_ = st.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		st.Close()
	}
	if _, err := st.Migrate(ctx); err != nil {
		drop()
		return nil, nil, err
	}
	return st, drop, nil
}

// writeOrdersCSV writes n canonical orders (the ingest contract's column
// names) to path.
func writeOrdersCSV(path string, n int) error { return writeOrders(path, 0, n) }

// writeOrders writes the n orders numbered from first, every 37 s from the start of
// 2024 (so files of as many orders from any first span the same months).
func writeOrders(path string, first, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "order_id,customer_id,ordered_at,revenue,currency,status,channel,country")
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	channels := []string{"search", "social", "email", "direct"}
	for i := first; i < first+n; i++ {
		fmt.Fprintf(w, "o%08d,c%06d,%s,%d.%02d,EUR,completed,%s,DE\n", i, i%50000,
			base.Add(time.Duration(i-first)*37*time.Second).Format("2006-01-02 15:04:05"), 5+i%300, i%100, channels[i%4])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ingestCSV: rows/s of ingest.LoadFile on a canonical orders CSV vs the
// engine loading the same file with INSERT … FROM INFILE, each into a fresh
// database, median of three runs.
func ingestCSV(ctx context.Context, cfg *Config) ([]Result, error) {
	path := filepath.Join(cfg.TempDir, fmt.Sprintf("converge-bench-orders-%d.csv", os.Getpid()))
	if err := writeOrdersCSV(path, cfg.IngestRows); err != nil {
		return nil, err
	}
	defer os.Remove(path)
	var ours, direct []float64
	for range 3 {
		st, drop, err := scratch(ctx, cfg)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		sum, err := ingest.LoadFile(ctx, st, path, ingest.Options{Entity: "orders", Source: "bench"}, nil)
		d := time.Since(t0)
		drop()
		if err != nil {
			return nil, err
		}
		if sum.Loaded != int64(cfg.IngestRows) {
			return nil, fmt.Errorf("loaded %d of %d rows (%d rejected)", sum.Loaded, cfg.IngestRows, sum.Rejected)
		}
		ours = append(ours, float64(cfg.IngestRows)/d.Seconds())

		st, drop, err = scratch(ctx, cfg)
		if err != nil {
			return nil, err
		}
		// FROM INFILE takes a string literal, not a bound parameter: the path (under the
		// configured temp dir) is quoted with every character a literal escapes.
		q := "INSERT INTO " + st.Database + ".orders (order_id, customer_id, ordered_at, revenue, currency, status, channel, country) FROM INFILE '" +
			strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(path) + "' FORMAT CSVWithNames"
		t0 = time.Now()
		_, err = st.Engine.Query(ctx, q, "TabSeparated")
		d = time.Since(t0)
		drop()
		if err != nil {
			return nil, err
		}
		direct = append(direct, float64(cfg.IngestRows)/d.Seconds())
	}
	m, _ := quantiles(ours)
	dm, _ := quantiles(direct)
	return []Result{{Group: "ingest", Name: fmt.Sprintf("CSV orders, %d rows", cfg.IngestRows), Unit: "rows/s", Median: m, Direct: dm, Ratio: m / dm, N: 3,
		Note: "ingest.LoadFile (parse, validate, ids, dedup, runs) vs INSERT FROM INFILE"}}, nil
}

// eventsAPI: 4 clients post 1,000-record NDJSON batches of touchpoints to the
// events service on loopback (authenticated, acknowledged after the group
// commit that stores them); events/s and ack latency, vs the engine inserting
// the same records as JSONEachRow in one statement.
func eventsAPI(ctx context.Context, cfg *Config) ([]Result, error) {
	const clients, batch = 4, 1000
	batches := max(cfg.Events/batch, 8)
	bodies := make([]string, batches)
	for i := range bodies {
		var sb strings.Builder
		for j := range batch {
			n := i*batch + j
			fmt.Fprintf(&sb, `{"event_id":"b%d","customer_id":"C%d","occurred_at":"2026-03-%02dT10:%02d:00Z","channel":"email","campaign":"spring","kind":"open"}`+"\n",
				n, n%5000, 1+n%28, n%60)
		}
		bodies[i] = sb.String()
	}
	st, drop, err := scratch(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer drop()
	tokens := events.NewTokens(st, time.Minute)
	tok, _, err := tokens.Create(ctx, "bench", events.ScopeIngest, "bench", nil)
	if err != nil {
		return nil, err
	}
	svc := events.New(st, tokens, events.Config{}, nil)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/events/", svc)
	srv := httptest.NewServer(mux)
	defer func() {
		srv.Close()
		svc.Close(context.Background())
	}()
	var (
		mu   sync.Mutex
		lat  []float64
		errs []error
	)
	next := make(chan string)
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for body := range next {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/events/touchpoints", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/x-ndjson")
				t0 := time.Now()
				resp, err := http.DefaultClient.Do(req)
				d := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case resp.StatusCode != http.StatusOK:
					errs = append(errs, fmt.Errorf("status %d", resp.StatusCode))
				default:
					lat = append(lat, msOf(d))
				}
				mu.Unlock()
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	for _, b := range bodies {
		next <- b
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d of %d posts failed, first: %w", len(errs), batches, errs[0])
	}
	var stored uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM touchpoints FINAL").Scan(&stored); err != nil {
		return nil, err
	}
	if stored != uint64(batches*batch) {
		return nil, fmt.Errorf("%d events stored of %d acknowledged", stored, batches*batch)
	}
	// The engine inserting the same records itself.
	all := strings.Join(bodies, "")
	_ = st.Conn.Exec(ctx, "TRUNCATE TABLE touchpoints")
	t0 := time.Now()
	if _, err := st.Engine.Query(ctx, "INSERT INTO "+st.Database+".touchpoints (event_id, customer_id, occurred_at, channel, campaign, kind) FORMAT JSONEachRow\n"+all, "TabSeparated"); err != nil {
		return nil, err
	}
	directRate := float64(batches*batch) / time.Since(t0).Seconds()
	rate := float64(batches*batch) / elapsed.Seconds()
	p50, p95 := quantiles(lat)
	p99 := percentile(lat, 99)
	return []Result{
		{Group: "events", Name: fmt.Sprintf("events API, %d clients × %d-record batches", clients, batch), Unit: "events/s", Median: rate, Direct: directRate,
			Ratio: rate / directRate, N: batches * batch, Note: "vs one INSERT FORMAT JSONEachRow"},
		{Group: "events", Name: "events API ack latency", Unit: "ms", Median: p50, P95: p95, N: batches, Note: fmt.Sprintf("p99 %.0f ms (250 ms group commit)", p99)},
	}, nil
}

func numCPU() int { return runtime.NumCPU() }

func goVersion() string { return runtime.Version() }
