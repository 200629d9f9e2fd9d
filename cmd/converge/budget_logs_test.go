package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Metrics of an analyst's folder that exceed their budgets: one needs more memory than a query
// may use, one runs longer than a tile may wait.
var heavyMetrics = map[string]string{
	"heavy_memory.sql": `-- name: heavy_memory
-- title: Heavy memory
-- description: Distinct numbers of a large range: more memory than one query may use.
-- owner: COO
-- unit: count
-- polarity: higher_is_better
-- kind: custom
SELECT toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS bucket, toFloat64(uniqExact(number)) AS value
FROM numbers(200000000)
`,
	"heavy_time.sql": `-- name: heavy_time
-- title: Heavy time
-- description: Twenty blocks of rows that each take 2.6 s: longer than a tile may wait, without using the CPU.
-- owner: COO
-- unit: count
-- polarity: higher_is_better
-- kind: custom
SELECT toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS bucket, toFloat64(sum(sleepEachRow(0.00004))) AS value
FROM numbers(1310700)
`,
}

// logLines parses the child's log: every line must be one JSON object.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %d is not a JSON object: %q", i+1, line)
		}
		out = append(out, m)
	}
	return out
}

// sessionClient signs in through the sign-in form and returns a client with the session that
// does not follow redirects.
func sessionClient(t *testing.T, base, email, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: 2 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the sign-in page: %s", page)
	}
	resp, err = cl.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "csrf_token": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d, want 303", resp.StatusCode)
	}
	return cl
}

// With log.format=json every log line is one JSON object, every line of a request carries its
// request_id (also returned in X-Request-Id), including the errors handlers log. A widget whose
// query exceeds its memory or time budget shows its error while the other widgets render.
func TestServeJSONLogsAndBudgets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs converge serve in a child process")
	}
	metricsDir := t.TempDir()
	for name, body := range heavyMetrics {
		if err := os.WriteFile(filepath.Join(metricsDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	base := "http://" + addr
	srv := startChild(t, serveEnv(t, dir, addr, "CONVERGE_LOG_FORMAT=json", "CONVERGE_METRICS_DIR="+metricsDir,
		"CONVERGE_ENGINE_MAX_QUERY_MEMORY=128MiB", "CONVERGE_SERVER_TILE_TIMEOUT=30s", "CONVERGE_SERVER_FINISH_TIMEOUT=0", "CONVERGE_ENGINE_POOL=4"), "serve")
	waitReady(t, srv, base, time.Minute)
	// The first admin's password is in the log, once.
	password := ""
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		warmed := false
		for _, l := range logLines(t, srv.stderr.String()) {
			if strings.HasPrefix(l["msg"].(string), "first run: created an admin") {
				password, _ = l["password"].(string)
			}
			warmed = warmed || l["msg"] == "dashboard warmed"
		}
		if password != "" && warmed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin password or warm-up in the log:\n%s", srv.stderr.String())
		}
	}
	// Sign in (not following the redirect to the overview: one overview at a time).
	cl := sessionClient(t, base, "admin@localhost", password)
	// The overview (as warmed at start, so the other tiles are cached and the machine's load
	// does not matter): the two heavy tiles fail, each with its reason; every other renders.
	// (server.finish_timeout is 0 here: with it, the warm-up's heavy_time query would go on and
	// answer this request; metrics.TestFinishInBackground covers that.)
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("X-Request-Id", "ops-overview-1")
	start := time.Now()
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") != "ops-overview-1" {
		t.Fatalf("overview: %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	errs := regexp.MustCompile(`(?s)<p class="tile-error" role="alert"><strong>Not available:</strong>(.*?)</p>`).FindAllStringSubmatch(string(body), -1)
	var memErr, timeErr int
	for _, e := range errs {
		switch msg := e[1]; {
		case strings.Contains(msg, "heavy_memory needs more memory than one query may use"):
			memErr++
		case strings.Contains(msg, "no answer within 30s (time budget)"):
			timeErr++
		default:
			t.Errorf("a tile failed that should render: %s", msg)
		}
	}
	if memErr != 1 || timeErr != 1 {
		t.Logf("log:\n%s", srv.stderr.String())
		t.Errorf("tile errors: %d memory, %d time budget; want one of each (all errors: %q)", memErr, timeErr, errs)
	}
	if !strings.Contains(string(body), "Gross revenue") || !strings.Contains(string(body), "Heavy memory") {
		t.Errorf("the overview lacks the built-in or the analyst's tiles")
	}
	if took > 50*time.Second {
		t.Errorf("the overview took %s: the time budget did not stop the heavy query", took)
	}

	// A page that is not there: logged by the error handler, with the generated request id.
	resp, err = cl.Get(base + "/no/such/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	notFoundID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusNotFound || len(notFoundID) != 32 {
		t.Fatalf("unknown page: %d, X-Request-Id %q (want a generated id)", resp.StatusCode, notFoundID)
	}

	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	lines := logLines(t, srv.stderr.String())
	byID := map[string][]string{}
	requestScoped := map[string]bool{"request": true, "request failed": true, "request denied": true, "tile query failed": true}
	for _, l := range lines {
		msg, _ := l["msg"].(string)
		id, _ := l["request_id"].(string)
		if requestScoped[msg] && id == "" {
			t.Errorf("a request-scoped line without request_id: %v", l)
		}
		if _, ok := l["time"]; !ok || l["level"] == nil {
			t.Errorf("a line without time or level: %v", l)
		}
		if id != "" {
			byID[id] = append(byID[id], msg)
		}
	}
	for id, want := range map[string][]string{
		"ops-overview-1": {"tile query failed", "tile query failed", "request"}, // heavy_memory, heavy_time in either order
		notFoundID:       {"request failed", "request"},
	} {
		if got := strings.Join(byID[id], ","); got != strings.Join(want, ",") {
			t.Errorf("lines of request %s: %q, want %q", id, got, want)
		}
	}
	for _, l := range lines {
		if l["request_id"] == "ops-overview-1" && l["msg"] == "tile query failed" && l["level"] != "WARN" {
			t.Errorf("tile failure logged at %v, want WARN", l["level"])
		}
	}
}
