package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/static"
)

// fakeStore implements Store for handler tests.
type fakeStore struct {
	desc       string
	pingErr    error
	version    string
	versionErr error
}

func (f fakeStore) Ping(ctx context.Context) error { return f.pingErr }
func (f fakeStore) Describe() string               { return f.desc }
func (f fakeStore) ServerVersion(ctx context.Context) (string, error) {
	return f.version, f.versionErr
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newTestServer(t *testing.T, st Store) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := slogTo(logs)
	return asAdmin(New(Config{}, Deps{Store: st, Log: log, Version: "v1.2.3-test"})), logs
}

func okStore() fakeStore {
	return fakeStore{desc: "embedded ./testdata", version: "26.5.3.1"}
}

func do(t *testing.T, h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHealthz(t *testing.T) {
	s, _ := newTestServer(t, fakeStore{desc: "x", pingErr: errors.New("down")})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := do(t, s.Handler(), method, "/healthz", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s /healthz: status %d, want 200", method, rec.Code)
		}
		if method == http.MethodGet && strings.TrimSpace(rec.Body.String()) != "ok" {
			t.Errorf("GET /healthz body %q, want ok", rec.Body.String())
		}
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		store      fakeStore
		wantStatus int
		want       readyResponse
	}{
		{
			name:       "ready",
			store:      fakeStore{desc: "embedded ./data"},
			wantStatus: http.StatusOK,
			want:       readyResponse{Status: "ready", Store: "embedded"},
		},
		{
			name:       "ping fails",
			store:      fakeStore{desc: "http://ch:8123", pingErr: errors.New("dial tcp: connection refused")},
			wantStatus: http.StatusServiceUnavailable,
			want:       readyResponse{Status: "unavailable", Store: "clickhouse", Error: "the store did not answer; an internal error; it is in the server log under request ID req-ready."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, tt.store)
			rec := do(t, s.Handler(), http.MethodGet, "/readyz", http.Header{HeaderRequestID: {"req-ready"}})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var got readyResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %q: %v", rec.Body.String(), err)
			}
			if got != tt.want {
				t.Errorf("body %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadyzHonoursTimeout(t *testing.T) {
	// The ping must get a deadline of at most readyTimeout.
	var deadline time.Duration
	st := pingFunc(func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		deadline = time.Until(d)
		return nil
	})
	s, _ := newTestServer(t, st)
	rec := do(t, s.Handler(), http.MethodGet, "/readyz", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body.String())
	}
	if deadline <= 0 || deadline > readyTimeout {
		t.Errorf("ping deadline in %v, want within (0, %v]", deadline, readyTimeout)
	}
}

type pingFunc func(ctx context.Context) error

func (f pingFunc) Ping(ctx context.Context) error                    { return f(ctx) }
func (f pingFunc) Describe() string                                  { return "fake" }
func (f pingFunc) ServerVersion(ctx context.Context) (string, error) { return "0", nil }

func TestHome(t *testing.T) {
	tests := []struct {
		name    string
		store   fakeStore
		want    []string
		notWant []string
	}{
		{
			name:  "engine reachable",
			store: okStore(),
			want:  []string{"<h1>converge</h1>", "embedded ./testdata", "ClickHouse 26.5.3.1", "v1.2.3-test", `<main id="main"`, "<header", "<footer", `aria-current="page"`},
		},
		{
			name:    "engine version fails",
			store:   fakeStore{desc: "http://ch:8123", versionErr: errors.New("connection refused")},
			want:    []string{"http://ch:8123", "Unavailable: an internal error; it is in the server log under request ID ", `role="alert"`},
			notWant: []string{"ClickHouse ", "connection refused"},
		},
		{
			name:    "description is escaped",
			store:   fakeStore{desc: "<script>alert(1)</script>", version: "1"},
			want:    []string{"&lt;script&gt;alert(1)&lt;/script&gt;"},
			notWant: []string{"<script>alert(1)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, tt.store)
			rec := do(t, s.Handler(), http.MethodGet, "/about", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200; body:\n%s", rec.Code, rec.Body.String())
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			body := rec.Body.String()
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body contains %q", w)
				}
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	s, logs := newTestServer(t, okStore())
	for _, target := range []string{"/no/such/page", "/static/css/missing.css", "/static/"} {
		rec := do(t, s.Handler(), http.MethodGet, target, nil)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("GET %s: status %d, want 404", target, rec.Code)
		}
		body := rec.Body.String()
		for _, w := range []string{"<!doctype html>", "Page not found", "404", rec.Header().Get(HeaderRequestID)} {
			if !strings.Contains(strings.ToLower(body), strings.ToLower(w)) {
				t.Errorf("GET %s: error page lacks %q", target, w)
			}
		}
	}
	if !strings.Contains(logs.String(), "status=404") {
		t.Errorf("404 not logged; logs:\n%s", logs)
	}
}

func TestHandlerErrors(t *testing.T) {
	tests := []struct {
		name       string
		handler    gin.HandlerFunc
		wantStatus int
		want       string
		notWant    string
	}{
		{
			name:       "panic",
			handler:    func(c *gin.Context) { panic("boom: secret detail") },
			wantStatus: http.StatusInternalServerError,
			want:       "Something went wrong",
			notWant:    "secret detail",
		},
		{
			name:       "internal error",
			wantStatus: http.StatusInternalServerError,
			want:       "Something went wrong",
			notWant:    "secret detail",
		},
		{
			name:       "http error",
			wantStatus: http.StatusBadRequest,
			want:       "bad period",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, logs := newTestServer(t, okStore())
			h := tt.handler
			if h == nil {
				status := tt.wantStatus
				h = s.handle(func(c *gin.Context) error {
					if status == http.StatusBadRequest {
						return httpError{status: status, msg: "bad period"}
					}
					return errors.New("query failed: secret detail")
				})
			}
			s.engine.GET("/test-failure", h)

			rec := do(t, s.Handler(), http.MethodGet, "/test-failure", nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			body := rec.Body.String()
			if !strings.Contains(body, tt.want) {
				t.Errorf("error page lacks %q:\n%s", tt.want, body)
			}
			if tt.notWant != "" && strings.Contains(body, tt.notWant) {
				t.Errorf("error page leaks %q", tt.notWant)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			// Logged once, with the request id.
			id := rec.Header().Get(HeaderRequestID)
			var failures int
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "request failed") || strings.Contains(line, "handler panic") {
					failures++
					if !strings.Contains(line, "request_id="+id) {
						t.Errorf("log line lacks request id %s: %s", id, line)
					}
				}
			}
			if failures != 1 {
				t.Errorf("error logged %d times, want 1; logs:\n%s", failures, logs)
			}
			// The process is still serving.
			if rec := do(t, s.Handler(), http.MethodGet, "/healthz", nil); rec.Code != http.StatusOK {
				t.Errorf("after failure: /healthz status %d", rec.Code)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name     string
		incoming string
		check    func(got string) bool
	}{
		{"generated when absent", "", generated.MatchString},
		{"kept when well-formed", "abc-123.DEF_4:5", func(got string) bool { return got == "abc-123.DEF_4:5" }},
		{"replaced when malformed", "bad id\x7f<script>", generated.MatchString},
		{"replaced when too long", strings.Repeat("a", 129), generated.MatchString},
	}
	s, _ := newTestServer(t, okStore())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range []string{"/healthz", "/", "/missing"} {
				var h http.Header
				if tt.incoming != "" {
					h = http.Header{HeaderRequestID: {tt.incoming}}
				}
				rec := do(t, s.Handler(), http.MethodGet, target, h)
				if got := rec.Header().Get(HeaderRequestID); !tt.check(got) {
					t.Errorf("GET %s: %s = %q", target, HeaderRequestID, got)
				}
			}
		})
	}
	a := do(t, s.Handler(), http.MethodGet, "/healthz", nil).Header().Get(HeaderRequestID)
	b := do(t, s.Handler(), http.MethodGet, "/healthz", nil).Header().Get(HeaderRequestID)
	if a == b {
		t.Errorf("two requests got the same id %q", a)
	}
}

func TestStatic(t *testing.T) {
	s, _ := newTestServer(t, okStore())
	hash, ok := static.Hash("css/app.css")
	if !ok {
		t.Fatal("css/app.css is not embedded")
	}
	tests := []struct {
		name       string
		target     string
		header     http.Header
		wantStatus int
		wantCache  string
	}{
		{"versioned", static.URL("css/app.css"), nil, http.StatusOK, "public, max-age=31536000, immutable"},
		{"unversioned", "/static/css/app.css", nil, http.StatusOK, "public, no-cache"},
		{"stale version", "/static/css/app.css?v=0000", nil, http.StatusOK, "public, no-cache"},
		{"revalidated", "/static/css/app.css", http.Header{"If-None-Match": {`"` + hash + `"`}}, http.StatusNotModified, "public, no-cache"},
		{"traversal", "/static/../static.go", nil, http.StatusNotFound, "no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, s.Handler(), http.MethodGet, tt.target, tt.header)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("Cache-Control %q, want %q", got, tt.wantCache)
			}
			if tt.wantStatus == http.StatusOK {
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
					t.Errorf("Content-Type %q, want text/css", ct)
				}
				if rec.Body.Len() == 0 {
					t.Error("empty body")
				}
			}
		})
	}
}

func TestRunGracefulShutdown(t *testing.T) {
	s, _ := newTestServer(t, okStore())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("GET /healthz: %d %q", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("server still accepting connections after shutdown")
	}
}

func TestNewDefaults(t *testing.T) {
	s := New(Config{}, Deps{Store: okStore()})
	if s.cfg.Addr != DefaultAddr || s.cfg.ShutdownTimeout != DefaultShutdownTimeout {
		t.Errorf("defaults: %+v", s.cfg)
	}
	if rec := do(t, s.Handler(), http.MethodGet, "/healthz", nil); rec.Code != http.StatusOK {
		t.Errorf("nil logger: /healthz status %d", rec.Code)
	}
}
