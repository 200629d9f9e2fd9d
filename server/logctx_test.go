package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// decodeLines parses JSON log output, one object per line.
func decodeLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not one JSON object: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// A line logged with a request's context carries its request_id, once, also through a logger
// that already has it; a line without a request has none.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil)))
	ctx := WithRequestID(context.Background(), "req-1")
	log.InfoContext(ctx, "with context")
	log.With("request_id", "req-1").InfoContext(ctx, "with both")
	log.WithGroup("g").InfoContext(ctx, "in a group", "k", "v")
	log.Info("no request")
	lines := decodeLines(t, buf.String())
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range []string{"req-1", "req-1", "req-1", ""} {
		got, _ := lines[i]["request_id"].(string)
		if i == 2 {
			g, _ := lines[i]["g"].(map[string]any)
			got, _ = g["request_id"].(string)
		}
		if got != want {
			t.Errorf("line %d %v: request_id %q, want %q", i, lines[i], got, want)
		}
	}
	if n := strings.Count(buf.String(), `"request_id"`); n != 3 {
		t.Errorf("request_id written %d times, want 3 (never twice on a line):\n%s", n, buf.String())
	}
	if LogHandler(LogHandler(slog.DiscardHandler)) != LogHandler(slog.DiscardHandler) {
		t.Errorf("wrapping twice wraps twice")
	}
}

// Every line a request logs, from the request's logger or from code holding its context (a
// failing tile), carries the id the response returns in X-Request-Id.
func TestRequestIDOnEveryLine(t *testing.T) {
	var buf bytes.Buffer // slog's handler serialises writes
	fm := newFakeMetrics()
	fm.fail["revenue"] = errors.New("the store fell over")
	srv := asAdmin(New(Config{TZ: "UTC", TileTimeout: 5 * time.Second}, Deps{Store: okStore(), Metrics: fm,
		Log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
	for _, c := range []struct {
		target, header string
		status         int
		msgs           []string
	}{
		{"/?range=last_30_days", "client-id-7", http.StatusOK, []string{"tile query failed", "request"}},
		{"/no/such/page", "", http.StatusNotFound, []string{"request failed", "request"}},
		{"/kpi/revenue?range=nonsense", "bad id with spaces", http.StatusBadRequest, []string{"request failed", "request"}},
	} {
		buf.Reset()
		req := httptest.NewRequest(http.MethodGet, c.target, nil)
		if c.header != "" {
			req.Header.Set(HeaderRequestID, c.header)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		id := rec.Header().Get(HeaderRequestID)
		switch {
		case rec.Code != c.status:
			t.Fatalf("%s: %d, want %d", c.target, rec.Code, c.status)
		case c.header == "client-id-7" && id != c.header:
			t.Errorf("%s: X-Request-Id %q, want the client's", c.target, id)
		case c.header != "client-id-7" && len(id) != 32:
			t.Errorf("%s: X-Request-Id %q, want a generated id", c.target, id)
		}
		var msgs []string
		for _, l := range decodeLines(t, buf.String()) {
			msgs = append(msgs, l["msg"].(string))
			if l["request_id"] != id {
				t.Errorf("%s: line %v has request_id %v, want %q", c.target, l, l["request_id"], id)
			}
		}
		if strings.Join(msgs, ",") != strings.Join(c.msgs, ",") {
			t.Errorf("%s: lines %q, want %q", c.target, msgs, c.msgs)
		}
	}
}
