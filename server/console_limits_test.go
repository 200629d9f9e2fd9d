package server

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
)

var tileErrRe = regexp.MustCompile(`(?s)<p class="tile-error" role="alert"><strong>Not available:</strong>(.*?)</p>`)

// longQuery keeps a core busy until it is cancelled (or its minute is up).
const longQuery = "SELECT count() FROM numbers(1000000000000) WHERE cityHash64(number) % 7 = 1"

// Six long console queries from one analyst at once (issue #15: /readyz answered 503 and the
// overview took 31 s for everyone): two run, the other four are refused at once with a 429
// saying how many run; meanwhile /readyz (a real ping of the store) and the overview answer.
func TestConsoleSixLongQueries(t *testing.T) {
	st, reg, svc := exportFixture(t)
	svc.Console = export.Console{Timeout: time.Minute}
	svc.Gate = &export.Gate{}
	// Tiles wait as long as they need: what is checked is that they get the store, not how fast
	// (this machine's load is not the test's).
	env := newAccessEnv(t, Config{TZ: "UTC", TileTimeout: 10 * time.Minute}, access.Config{}, Deps{Store: st, Exports: svc,
		Metrics: NewRegistryMetrics(reg, RegistryConfig{Currency: "EUR", WeekStart: time.Monday})})
	analyst, exec := env.session(t, access.RoleAnalyst), env.session(t, access.RoleExecutive)

	overview := func() []string {
		t.Helper()
		rec := env.send(t, context.Background(), http.MethodGet, "/?range=custom&from=2026-01-01&to=2026-03-31&grain=month", &exec, nil, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("the overview: %d\n%.2000s", rec.Code, rec.Body.String())
		}
		var errs []string
		for _, m := range tileErrRe.FindAllStringSubmatch(rec.Body.String(), -1) {
			errs = append(errs, html.UnescapeString(strings.TrimSpace(m[1])))
		}
		return errs
	}
	before := overview() // tiles this fixture cannot fill fail the same way alone

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type answer struct {
		code int
		body string
	}
	answers := make(chan answer, 6)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"query": {longQuery}, csrfField: {analyst.CSRFToken()}}
			rec := env.send(t, ctx, http.MethodPost, "/sql", &analyst, form, nil)
			answers <- answer{rec.Code, html.UnescapeString(rec.Body.String())}
		}()
	}
	// The four refused come back while the two run (a minute at most: the test does not time
	// them, it waits for them).
	deadline := time.After(time.Minute)
	refused := 0
	for refused < 4 {
		select {
		case a := <-answers:
			if a.code != http.StatusTooManyRequests || !strings.Contains(a.body, "Not run now:") ||
				!strings.Contains(a.body, "You have 2 console queries running") {
				t.Fatalf("an answer while two run: %d\n%.1500s", a.code, a.body)
			}
			refused++
		case <-deadline:
			t.Fatalf("%d of the six were refused within a minute, want 4", refused)
		}
	}
	if mine, all := svc.Gate.Running(env.users[access.RoleAnalyst].Email); mine != 2 || all != 2 {
		t.Fatalf("running: the analyst's %d, all %d; want 2 and 2", mine, all)
	}
	for i := range 3 {
		rec := env.send(t, context.Background(), http.MethodGet, "/readyz", nil, nil, nil)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"ready"`) {
			t.Fatalf("/readyz %d while two console queries run: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	if during := overview(); !slices.Equal(during, before) {
		t.Fatalf("the overview's failed tiles while two console queries run: %q, alone %q", during, before)
	}
	cancel()
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.code == http.StatusTooManyRequests {
			t.Errorf("a query that ran was answered 429")
		}
	}
	if _, all := svc.Gate.Running(""); all != 0 {
		t.Errorf("%d console queries still counted after all ended", all)
	}
}

// A result larger than the page holds is refused with 422 and what to do; the download of the
// same query streams it.
func TestConsoleResultTooLarge(t *testing.T) {
	env, svc := consoleEnv(t)
	svc.Console.MaxResultBytes = 1 << 20
	sess := env.session(t, access.RoleAnalyst)
	const q = "SELECT number, repeat('y', 300000) AS s FROM numbers(20)" // the page's 6 rows: 1.8 MB
	code, body := env.runSQL(t, sess, "/sql", q, nil)
	text := html.UnescapeString(body)
	if code != http.StatusUnprocessableEntity || !strings.Contains(text, "Result too large:") ||
		!strings.Contains(text, "Result larger than 1 MiB, more than this page shows: download it, or add a LIMIT.") {
		t.Fatalf("page: %d\n%.3000s", code, text)
	}
	if !strings.Contains(text, ">"+html.UnescapeString(q)+"</textarea>") {
		t.Errorf("the query is not kept in the editor")
	}
	code, body = env.runSQL(t, sess, "/sql/download", q, url.Values{"format": {"csv"}, "raw": {"1"}})
	if code != http.StatusOK || strings.Count(body, "\n") != 21 || !strings.Contains(body, strings.Repeat("y", 300000)) {
		t.Errorf("download: %d, %d lines", code, strings.Count(body, "\n"))
	}
}

// The page shows a WITH TOTALS row below the rows.
func TestConsoleTotalsRow(t *testing.T) {
	env, _ := consoleEnv(t)
	sess := env.session(t, access.RoleAnalyst)
	code, body := env.runSQL(t, sess, "/sql", "SELECT channel, count() AS orders FROM orders GROUP BY channel WITH TOTALS ORDER BY channel", nil)
	table := resultRowRe.FindString(body)
	if code != http.StatusOK || !strings.Contains(table, "<tfoot>") {
		t.Fatalf("%d\n%.3000s", code, body)
	}
	foot := table[strings.Index(table, "<tfoot>"):]
	if !strings.Contains(foot, "Totals") || !strings.Contains(foot, ">12<") && !strings.Contains(foot, "12</td>") {
		t.Errorf("totals row %q, want Totals and the 12 orders", foot)
	}
}

// An API answer larger than the server holds is a 422 with what to do, not the process's
// memory.
func TestAPIAnswerTooLarge(t *testing.T) {
	f := newFakeMetrics()
	for _, tl := range []*export.ResultTooLargeError{
		{Limit: export.MetricResultBytes},                                             // the response, counted
		{Limit: export.MetricResultBytes, Block: true, Bytes: 100 << 20, Rows: 70000}, // a block the bridge refused
	} {
		f.fail["revenue"] = fmt.Errorf("metric revenue: %w", tl)
		srv := asAdmin(New(Config{}, Deps{Store: okStore(), Metrics: f}))
		rec := do(t, srv.Handler(), http.MethodGet, "/api/v1/metrics/revenue?range=last_30_days", nil)
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), `"error":"The answer is larger than 64 MiB, more than`) ||
			!strings.Contains(rec.Body.String(), "narrow the range") {
			t.Errorf("%v: %d %s", tl, rec.Code, rec.Body.String())
		}
	}
}
