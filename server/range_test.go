package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// yearEndServer serves metrics/testdata/year_end.sql (orders around the turn of 2025 in
// Berlin) with the report zone Europe/Berlin, as admin.
func yearEndServer(t *testing.T) *Server {
	t.Helper()
	st := whtest.Store(t)
	q, err := os.ReadFile(filepath.Join("..", "metrics", "testdata", "year_end.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(string(q), ";\n") {
		if strings.TrimSpace(stmt) != "" {
			if err := st.Conn.Exec(context.Background(), stmt); err != nil {
				t.Fatal(err)
			}
		}
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1, Defaults: metrics.Defaults{TZ: berlin}})
	if err != nil {
		t.Fatal(err)
	}
	return asAdmin(New(Config{TZ: "Europe/Berlin", WeekStart: time.Monday}, Deps{Store: okStore(), Exports: &export.Service{Store: st, Registry: reg},
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})}))
}

// The API's to is the last day included, as the pages' and the CLI's: 2025 asked with
// to=2025-12-31 holds the order of 31 December 23:30 in Berlin (1,110, not 1,100). The answer
// states the range as the request gives it, so it can be sent back, and the metric export's
// manifest says the same days.
func TestAPIToInclusive(t *testing.T) {
	srv := yearEndServer(t)
	const year = "range=custom&from=2025-01-01&to=2025-12-31&grain=year"
	rec := get(t, srv, "/api/v1/metrics/revenue_gross?"+year)
	var res resultJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %v %s", rec.Code, err, rec.Body.String())
	}
	if res.Total == nil || *res.Total != 1110 {
		t.Errorf("total %v, want 1110 (31 December 23:30 included)", res.Total)
	}
	if res.Query.From != "2025-01-01" || res.Query.To != "2025-12-31" || res.Query.Start != "2025-01-01T00:00:00+01:00" || res.Query.End != "2026-01-01T00:00:00+01:00" {
		t.Errorf("query %+v", res.Query)
	}
	// Sent back as it came, the same answer.
	back := url.Values{"range": {res.Query.Range}, "from": {res.Query.From}, "to": {res.Query.To}, "grain": {res.Query.Grain}}
	var again resultJSON
	rec = get(t, srv, "/api/v1/metrics/revenue_gross?"+back.Encode())
	if err := json.Unmarshal(rec.Body.Bytes(), &again); err != nil || again.Total == nil || *again.Total != 1110 || again.Query.From != res.Query.From || again.Query.To != res.Query.To || again.Query.End != res.Query.End {
		t.Errorf("sent back: %+v %v", again.Query, err)
	}
	rec = get(t, srv, "/api/v1/metrics/revenue_gross?range=custom&from=2025-01-01&to=2025-12-30&grain=year")
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Total == nil || *res.Total != 1100 {
		t.Errorf("to=2025-12-30: %v %v", res.Total, err)
	}

	rec = get(t, srv, "/api/v1/export/metric/revenue_gross?"+year+"&raw=1&manifest=1")
	var m export.Manifest
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("manifest: %d %v", rec.Code, err)
	}
	if m.Params.Get("from") != "2025-01-01" || m.Params.Get("to") != "2025-12-31" || m.Params.Get("tz") != "Europe/Berlin" {
		t.Errorf("manifest params %v", m.Params)
	}
	rec = get(t, srv, "/api/v1/export/metric/revenue_gross?"+year+"&raw=1")
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, "\nTotal,1110,") {
		t.Errorf("export: %d\n%s", rec.Code, body)
	}
}
