package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

type fixture struct {
	st    *warehouse.Store
	svc   *Service
	srv   *httptest.Server
	token string
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	st := whtest.Store(t)
	tokens := NewTokens(st, time.Minute)
	tok, _, err := tokens.Create(context.Background(), "test", ScopeIngest, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(st, tokens, cfg, nil)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/events/", svc)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		svc.Close(context.Background())
	})
	return &fixture{st: st, svc: svc, srv: srv, token: tok}
}

func (f *fixture) post(t *testing.T, entity, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/events/"+entity, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("status %d, body %q is not JSON", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func (f *fixture) count(t testing.TB, q string) uint64 {
	t.Helper()
	var n uint64
	if err := f.st.Conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func touch(i int) string {
	return fmt.Sprintf(`{"event_id":"e%d","customer_id":"C%d","occurred_at":"2026-03-01T10:%02d:00Z","channel":"email","campaign":"spring","kind":"open"}`, i, i%7, i%60)
}

func TestEventsAuthAndErrors(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 4096, MaxRecords: 20})
	cases := []struct {
		name, entity, token, body string
		status                    int
		want                      string
	}{
		{"no token", "touchpoints", "", touch(1), 401, "API token"},
		{"wrong token", "touchpoints", "cvg_000000000000_" + strings.Repeat("a", 43), touch(1), 401, "API token"},
		{"unknown entity", "planets", f.token, touch(1), 404, "unknown entity"},
		{"empty body", "touchpoints", f.token, "  \n", 400, "no records"},
		{"broken array", "touchpoints", f.token, "[" + touch(1) + ",", 400, "malformed"},
		{"too large", "touchpoints", f.token, strings.Repeat(`{"pad":"`+strings.Repeat("a", 400)+`"}`+"\n", 15), 413, "larger than"},
		{"too many", "touchpoints", f.token, strings.Repeat("{}\n", 21), 413, "more than 20"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.post(t, c.entity, c.token, c.body)
			if status != c.status || !strings.Contains(fmt.Sprint(body["error"]), c.want) {
				t.Fatalf("status %d body %v, want %d mentioning %q", status, body, c.status, c.want)
			}
		})
	}
	if n := f.count(t, "SELECT count() FROM touchpoints"); n != 0 {
		t.Fatalf("%d touchpoints stored from refused requests", n)
	}
}

// A 2xx means the records are in the store; bad records are reported by
// index and quarantined, the others loaded.
func TestEventsPartialFailure(t *testing.T) {
	f := newFixture(t, Config{})
	body := touch(1) + "\n" +
		`{"event_id":"e2","occurred_at":"yesterday","channel":"email","kind":"open"}` + "\n" +
		`not json at all` + "\n" +
		touch(3) + "\n"
	status, resp := f.post(t, "touchpoints", f.token, body)
	if status != http.StatusMultiStatus || resp["accepted"] != 2.0 || resp["rejected"] != 2.0 {
		t.Fatalf("status %d resp %v", status, resp)
	}
	errs := resp["errors"].([]any)
	first := errs[0].(map[string]any)
	if first["index"] != 1.0 || first["field"] != "occurred_at" {
		t.Fatalf("errors %v", errs)
	}
	if second := errs[1].(map[string]any); second["index"] != 2.0 || !strings.Contains(second["reason"].(string), "JSON") {
		t.Fatalf("errors %v", errs)
	}
	// Acknowledged: already in the store, no waiting.
	if n := f.count(t, "SELECT count() FROM touchpoints FINAL"); n != 2 {
		t.Fatalf("%d touchpoints in the store after a 207, want 2", n)
	}
	if n := f.count(t, "SELECT count() FROM quarantine WHERE raw LIKE '%not json at all%' OR raw LIKE '%yesterday%'"); n != 2 {
		t.Fatalf("%d quarantined, want 2", n)
	}
	// A JSON array works as well; sending the same records again changes nothing.
	status, resp = f.post(t, "touchpoints", f.token, "["+touch(1)+","+touch(3)+"]")
	if status != 200 || resp["accepted"] != 2.0 {
		t.Fatalf("array: %d %v", status, resp)
	}
	if n := f.count(t, "SELECT count() FROM touchpoints FINAL"); n != 2 {
		t.Fatalf("%d touchpoints after a resend, want 2", n)
	}
}

// Concurrent requests are group-committed; every acknowledged record is stored once.
func TestEventsConcurrent(t *testing.T) {
	f := newFixture(t, Config{FlushRows: 300, FlushEvery: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for i := range 100 {
				b.WriteString(touch(g*1000+i) + "\n")
			}
			status, resp := f.post(t, "touchpoints", f.token, b.String())
			if status != 200 || resp["accepted"] != 100.0 {
				t.Errorf("goroutine %d: %d %v", g, status, resp)
			}
		}()
	}
	wg.Wait()
	if n := f.count(t, "SELECT count() FROM touchpoints FINAL"); n != 800 {
		t.Fatalf("%d touchpoints, want 800", n)
	}
	f.svc.Close(context.Background())
	if n := f.count(t, "SELECT count() FROM ingest_runs FINAL WHERE source = 'events' AND status = 'succeeded' AND rows_loaded = 800"); n != 1 {
		t.Fatalf("no finished run with 800 rows after Close (%d)", n)
	}
}

// Several malformed records in one request are each reported at their own index, and only
// they are quarantined as malformed (found by FuzzDecode: the second one's index was off).
func TestEventsMalformedIndexes(t *testing.T) {
	f := newFixture(t, Config{})
	body := touch(1) + "\nnot json\n[1]\n" + touch(2) + "\nnull\n"
	status, resp := f.post(t, "touchpoints", f.token, body)
	if status != http.StatusMultiStatus || resp["accepted"] != 2.0 || resp["rejected"] != 3.0 {
		t.Fatalf("status %d resp %v", status, resp)
	}
	var idx []float64
	for _, e := range resp["errors"].([]any) {
		idx = append(idx, e.(map[string]any)["index"].(float64))
	}
	if fmt.Sprint(idx) != "[1 2 4]" {
		t.Fatalf("errors at %v, want [1 2 4]", idx)
	}
	if n := f.count(t, "SELECT count() FROM quarantine WHERE code = 'malformed_json'"); n != 3 {
		t.Fatalf("%d quarantined as malformed, want 3", n)
	}
	if n := f.count(t, "SELECT count() FROM touchpoints FINAL"); n != 2 {
		t.Fatalf("%d touchpoints stored, want 2", n)
	}
}

// The Authorization scheme is case-insensitive (RFC 9110 11.1): "bearer" is "Bearer".
func TestEventsBearerScheme(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 4096, MaxRecords: 20})
	for i, c := range []struct {
		header string
		status int
	}{
		{"Bearer " + f.token, 200},
		{"bearer " + f.token, 200},
		{"BEARER " + f.token, 200},
		{"Bearer\t" + f.token, 200},
		{"  bEaReR   " + f.token + " ", 200},
		{"Basic " + f.token, 401},
		{"Bearer" + f.token, 401},
		{f.token, 401},
		{"Bearer ", 401},
	} {
		req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/events/touchpoints", strings.NewReader(touch(i)))
		req.Header.Set("Authorization", c.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("Authorization %q: %d, want %d", c.header, resp.StatusCode, c.status)
		}
	}
	if n := f.count(t, "SELECT count() FROM touchpoints"); n != 5 {
		t.Fatalf("%d touchpoints stored, want the 5 accepted", n)
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER abc": "abc", "Bearer \t abc ": "abc",
		"Basic abc": "", "Bearerabc": "", "abc": "", "": "", "Bearer": "", "Bearer   ": "",
	} {
		if got := bearerToken(h); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}

// A store error is logged, not sent: the response names no engine message or address.
func TestEventsStoreErrorNotShown(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 4096, MaxRecords: 20})
	if status, _ := f.post(t, "touchpoints", f.token, touch(1)); status != 200 {
		t.Fatalf("first post: %d", status)
	}
	if err := f.st.Conn.Exec(context.Background(), "DROP TABLE touchpoints"); err != nil {
		t.Fatal(err)
	}
	status, body := f.post(t, "touchpoints", f.token, touch(2))
	msg := fmt.Sprint(body["error"])
	if status != http.StatusServiceUnavailable || !strings.Contains(msg, "send them again") {
		t.Fatalf("status %d, body %v", status, body)
	}
	for _, leak := range []string{"DB::Exception", "Code:", "touchpoints", "http://", "embedded", "UNKNOWN_TABLE"} {
		if strings.Contains(msg, leak) {
			t.Errorf("the error shows %q: %s", leak, msg)
		}
	}
}
