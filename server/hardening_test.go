package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/metrics"
)

// The Authorization scheme is case-insensitive (RFC 9110 11.1, RFC 6750 2.1).
func TestBearerScheme(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER abc": "abc", "Bearer\tabc": "abc", " Bearer  abc ": "abc",
		"Basic abc": "", "Bearerabc": "", "abc": "", "": "", "Bearer": "", "Bearer  ": "",
	} {
		if got, ok := bearerToken(h); got != want || ok != (want != "") {
			t.Errorf("bearerToken(%q) = %q, %v, want %q", h, got, ok, want)
		}
	}
	env := newAccessEnv(t, Config{}, access.Config{}, Deps{Tokens: fakeTokens{"r": "read", "m": "metrics"}})
	for _, tc := range []struct {
		header, path string
		want         int
	}{
		{"bearer r", "/api/v1/metrics", http.StatusOK},
		{"BEARER r", "/api/v1/metrics", http.StatusOK},
		{"Bearer\tr", "/api/v1/metrics", http.StatusOK},
		{"bearer m", metricsPath, http.StatusOK},
		{"Basic r", "/api/v1/metrics", http.StatusUnauthorized},
		{"Bearerr", "/api/v1/metrics", http.StatusUnauthorized},
	} {
		rec := env.send(t, context.Background(), http.MethodGet, tc.path, nil, nil, http.Header{"Authorization": {tc.header}})
		if rec.Code != tc.want {
			t.Errorf("Authorization %q on %s: %d, want %d", tc.header, tc.path, rec.Code, tc.want)
		}
	}
}

// storeSecret is what a store error looks like through clickhouse-go over HTTP: its request
// URL (the user, the database, settings) and the engine's message.
const storeSecret = `clickhouse [execute]:: Post "http://default@embedded:8123?database=converge&query_id=q1": Code: 60. DB::Exception: Unknown table expression identifier 'converge.survey_responses'. (UNKNOWN_TABLE)`

// No page or API answer shows a store error: not its URL, not the engine's message. Each names
// the request ID the error is logged under.
func TestErrorsHideInternals(t *testing.T) {
	secret := errors.New(storeSecret)
	leaks := []string{"embedded:8123", "default@", "DB::Exception", "UNKNOWN_TABLE", "query_id", "survey_responses"}
	cases := []struct {
		name   string
		target string
		status int
		setup  func(m *fakeMetrics, st *fakeStore)
	}{
		{"a tile", "/?range=last_30_days", http.StatusOK, func(m *fakeMetrics, _ *fakeStore) { m.fail["revenue"] = secret }},
		{"a tile partial", "/tiles/revenue?range=last_30_days", http.StatusOK, func(m *fakeMetrics, _ *fakeStore) { m.fail["revenue"] = secret }},
		{"a KPI page's trend", "/kpi/revenue?range=last_30_days", http.StatusOK, func(m *fakeMetrics, _ *fakeStore) { m.fail["revenue"] = secret }},
		{"the catalog on the overview", "/", http.StatusOK, func(m *fakeMetrics, _ *fakeStore) { m.catalogErr = secret }},
		{"the catalog on a KPI page (503 error page)", "/kpi/revenue", http.StatusServiceUnavailable, func(m *fakeMetrics, _ *fakeStore) { m.catalogErr = secret }},
		{"the catalog in the API", "/api/v1/metrics", http.StatusServiceUnavailable, func(m *fakeMetrics, _ *fakeStore) { m.catalogErr = secret }},
		{"the engine on the system page", "/about", http.StatusOK, func(_ *fakeMetrics, st *fakeStore) { st.versionErr = secret }},
		{"the store on /readyz (no sign-in)", "/readyz", http.StatusServiceUnavailable, func(_ *fakeMetrics, st *fakeStore) {
			st.pingErr, st.desc = secret, "http://default@embedded:8123"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, st := newFakeMetrics(), okStore()
			c.setup(m, &st)
			srv, logs := newTestServerCfg(t, Config{TZ: "UTC", TileTimeout: 5 * time.Second}, Deps{Store: st, Metrics: m})
			rec := do(t, srv.Handler(), http.MethodGet, c.target, nil)
			body, id := rec.Body.String(), rec.Header().Get(HeaderRequestID)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %.500s", rec.Code, c.status, body)
			}
			for _, l := range leaks {
				if strings.Contains(body, l) {
					t.Errorf("the answer shows %q: %.2000s", l, body)
				}
			}
			if id == "" || !strings.Contains(body, "in the server log under request ID "+id) {
				t.Errorf("the answer does not name its request ID %q: %.2000s", id, body)
			}
			if log := logs.String(); !strings.Contains(log, "embedded:8123") || !strings.Contains(log, "request_id="+id) {
				t.Errorf("the error is not logged with the request ID:\n%s", log)
			}
		})
	}
}

func TestPublicMessage(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string // "" = not for people
	}{
		{errors.New(storeSecret), ""},
		{fmt.Errorf("metric nps: %w", errors.New(storeSecret)), ""},
		{&paramError{Param: "range", Msg: "Invalid range."}, "Invalid range."},
		{fmt.Errorf("wrapped with http://x.example/?a=b: %w", &paramError{Msg: "Invalid range."}), "Invalid range."},
		{fmt.Errorf("metric nps: %w", errBudget), "no answer within its time budget; try again or narrow the range."},
		{&metrics.Error{File: "nps.sql", Line: 3, Reason: "unknown column x"}, "nps.sql:3: unknown column x"},
		{&metrics.Error{File: "nps.sql", Line: 3, Reason: "the SQL does not run against http://default@ch:8123/?x=1"}, "nps.sql:3: the SQL does not run against (address hidden)"},
		{&metrics.MemoryError{Metric: "clv", Err: errors.New(storeSecret)}, "clv needs more memory than one query may use: narrow the range, or ask an administrator to raise engine.max_query_memory"},
		{&access.InvalidError{Field: "email", Reason: `"x" is not an email address`}, `"x" is not an email address`},
		{errShown("metric %s is not defined", "roas"), "metric roas is not defined"},
		{httpError{status: http.StatusServiceUnavailable, msg: "Reports are not configured."}, "Reports are not configured."},
		{fmt.Errorf("customer: %w", metrics.ErrNoSnapshot), metrics.ErrNoSnapshot.Error()},
	} {
		got, ok := publicMessage(c.err)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("publicMessage(%v) = %q, %v, want %q", c.err, got, ok, c.want)
		}
	}
}

// Every response carries the security headers; a page's scripts carry the nonce of its own
// Content-Security-Policy, which differs between responses.
func TestSecurityHeaders(t *testing.T) {
	srv, _ := newTestServerCfg(t, Config{TZ: "UTC"}, Deps{Store: okStore(), Metrics: newFakeMetrics()})
	nonceRe := regexp.MustCompile(`script-src 'self' 'nonce-([A-Za-z0-9+/=]{24})'`)
	seen := map[string]bool{}
	for _, target := range []string{"/?range=last_30_days", "/kpi/revenue", "/static/css/app.css", "/api/v1/metrics", "/no/such/page", "/healthz", "/?drop=x"} {
		rec := do(t, srv.Handler(), http.MethodGet, target, nil)
		h := rec.Header()
		csp := h.Get("Content-Security-Policy")
		m := nonceRe.FindStringSubmatch(csp)
		if m == nil || !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			!strings.Contains(csp, "object-src 'none'") || !strings.Contains(csp, "base-uri 'none'") || !strings.Contains(csp, "form-action 'self'") ||
			strings.Contains(csp, "unsafe-") {
			t.Errorf("%s: Content-Security-Policy %q", target, csp)
			continue
		}
		if seen[m[1]] {
			t.Errorf("%s: nonce %s used twice", target, m[1])
		}
		seen[m[1]] = true
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"} {
			if h.Get(k) != want {
				t.Errorf("%s: %s %q, want %q", target, k, h.Get(k), want)
			}
		}
		if strings.HasPrefix(target, "/?range") || strings.HasPrefix(target, "/kpi") {
			body := rec.Body.String()
			if n := strings.Count(body, "<script "); n == 0 || strings.Count(body, `nonce="`+m[1]+`"`) != n {
				t.Errorf("%s: %d scripts, not all with the response's nonce", target, n)
			}
			if !strings.Contains(body, `<meta name="htmx-config" content="{&#34;includeIndicatorStyles&#34;:false,`) {
				t.Errorf("%s: no htmx config keeping htmx's inline style off", target)
			}
			if strings.Contains(body, " style=") || strings.Contains(body, "<style") {
				t.Errorf("%s: an inline style", target)
			}
		}
	}
}
