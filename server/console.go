package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/views"
)

// The SQL console (analysts and up): GET /sql shows the editor, the rules and the user's last
// queries (?h=ID opens one of them in the editor); POST /sql runs the form's query through the
// read-only console (export.Service.Run: one read-only statement, readonly=1, the
// console.max_rows, console.timeout and console.max_memory limits) and shows its rows with
// their types (and a WITH TOTALS row below them); POST /sql/download streams the same query's
// rows as a file (export.SQL; the download parameters of exportRequest, in the form: format,
// preset, raw, bundle=zip for the file with its manifest, manifest=1 for the manifest alone),
// at most Config.ExportMaxRows rows. A refused query, or one the engine rejects or stops at a
// limit, is answered 400 with the page and the reason; a result larger than the page holds
// (console.max_result_bytes) 422, saying to download it or add a LIMIT; a query over the
// number the console runs at once (export.Gate: per person, in all) 429 at once, saying how
// many run. Every run and download is kept in the user's history (console_history) and
// written to the audit log (actions sql.run and sql.download, the query as target).

// Console limits of the page.
const (
	maxQueryBytes  = 64 << 10 // the longest query text accepted
	historyShown   = 50       // queries of the history listed
	auditQueryText = 200      // characters of the query in the audit log's target (the detail has it all)
)

// consoleView is the console page's model for the request: the limits, and the user's history.
func (s *Server) consoleView(c *gin.Context) views.ConsoleView {
	v := views.ConsoleView{Page: s.page(c, "SQL console", "sql"), MaxHistory: historyShown}
	if s.exports == nil {
		v.NotConfigured = true
		return v
	}
	l := s.exports.Limits()
	v.Limits = views.ConsoleLimits{Rows: views.FormatCount(int64(l.MaxRows)), Bytes: binaryBytes(l.MaxResultBytes),
		Timeout: l.Timeout.String(), Memory: binaryBytes(l.MaxMemory), Read: "any amount", DownloadRows: "all",
		Block: binaryBytes(l.BlockBytes)}
	if l.MaxBytesToRead > 0 {
		v.Limits.Read = binaryBytes(l.MaxBytesToRead)
	}
	if s.cfg.ExportMaxRows > 0 {
		v.Limits.DownloadRows = "at most " + views.FormatCount(int64(s.cfg.ExportMaxRows))
	}
	v.Limits.PerUser, v.Limits.Total = "any number of", "any number"
	if perUser, total := s.exports.ConsoleGate().Limits(); perUser > 0 {
		v.Limits.PerUser, v.Limits.Total = strconv.Itoa(perUser), strconv.Itoa(total)
	}
	return v
}

// withHistory adds the user's history to v (an error is shown in its place).
func (s *Server) withHistory(c *gin.Context, v *views.ConsoleView) {
	if v.NotConfigured {
		return
	}
	loc, _ := loadZone(v.Page.TZ)
	list, err := s.exports.History(c.Request.Context(), consoleUser(c), historyShown)
	if err != nil {
		s.reqLog(c).Warn("console history", "error", err)
		v.HistoryError = shownText(c.Request.Context(), err)
		return
	}
	for _, e := range list {
		row := views.HistoryRow{ID: e.ID, At: e.At.In(loc).Format("2006-01-02 15:04:05"), Query: e.Query, Kind: historyKind(e.Kind),
			Duration: formatElapsed(e.Duration), Rows: views.FormatCount(int64(e.Rows)), Error: e.Error, OK: e.OK, Limited: e.Limited,
			OpenURL: "/sql?" + url.Values{"h": {e.ID}}.Encode()}
		if !e.OK {
			row.Rows = views.NoData
		}
		v.History = append(v.History, row)
	}
}

func historyKind(kind string) string {
	switch kind {
	case "run":
		return "run"
	case "manifest":
		return "manifest"
	}
	return "download " + strings.ToUpper(kind)
}

// consoleUser is whose history a request reads and writes.
func consoleUser(c *gin.Context) string {
	if id := identityOf(c); id.user != nil {
		return id.user.Email
	}
	return ""
}

// consolePage answers GET /sql: the editor (with ?h=ID, one of the user's history entries in
// it, not run), the rules and limits, the history.
func (s *Server) consolePage(c *gin.Context) error {
	v := s.consoleView(c)
	status := http.StatusOK
	if v.NotConfigured {
		status = http.StatusServiceUnavailable
	} else if id := c.Query("h"); id != "" {
		e, err := s.exports.Entry(c.Request.Context(), consoleUser(c), id)
		switch {
		case errors.Is(err, export.ErrNoEntry):
			return errNotFound("Your history has no query " + strconv.Quote(id) + ".")
		case err != nil:
			return err
		}
		v.Query = e.Query
	}
	s.withHistory(c, &v)
	c.Header("Cache-Control", "no-store")
	return s.renderHTML(c, status, views.Console(v))
}

// formQuery reads the form's query: empty or too long is a 400.
func formQuery(c *gin.Context) (string, error) {
	q := c.PostForm("query")
	switch {
	case strings.TrimSpace(q) == "":
		return q, &paramError{Param: "query", Msg: "Write a query first: the form's query is empty."}
	case len(q) > maxQueryBytes:
		return q, &paramError{Param: "query", Msg: fmt.Sprintf("The query is %d bytes long; the console takes at most %d.", len(q), maxQueryBytes)}
	}
	return q, nil
}

// consoleRun answers POST /sql: runs the query and shows its result, or why it did not run.
func (s *Server) consoleRun(c *gin.Context) error {
	v := s.consoleView(c)
	if v.NotConfigured {
		return errUnavailable(msgNoExports)
	}
	q, err := formQuery(c)
	v.Query = q
	if err != nil {
		return s.consoleFailed(c, v, err)
	}
	ctx := c.Request.Context()
	start := time.Now()
	res, err := s.exports.Run(ctx, consoleUser(c), q)
	took := time.Since(start)
	e := export.HistoryEntry{User: consoleUser(c), Query: q, Kind: "run", Duration: took, OK: err == nil}
	detail := map[string]any{"query": q, "ms": took.Milliseconds(), "ok": err == nil}
	if err != nil {
		e.Error, detail["error"] = err.Error(), err.Error()
	} else {
		e.Rows, e.Limited = len(res.Rows), res.Limited
		detail["rows"], detail["limited"] = len(res.Rows), res.Limited
	}
	s.recordConsole(c, "sql.run", e, detail)
	if err != nil {
		return s.consoleFailed(c, v, err)
	}
	loc, _ := loadZone(v.Page.TZ)
	v.Result = consoleResult(res, took, loc)
	s.withHistory(c, &v)
	c.Header("Cache-Control", "no-store")
	return s.renderHTML(c, http.StatusOK, views.Console(v))
}

// recordConsole keeps a run or download in the user's history and the audit log; failures to
// record are logged (the query has run).
func (s *Server) recordConsole(c *gin.Context, action string, e export.HistoryEntry, detail map[string]any) {
	ctx := context.WithoutCancel(c.Request.Context())
	if err := s.exports.Record(ctx, e); err != nil {
		s.reqLog(c).Error("console history", "error", err)
	}
	target := strings.Join(strings.Fields(e.Query), " ")
	if r := []rune(target); len(r) > auditQueryText {
		target = string(r[:auditQueryText]) + "…"
	}
	s.auditExport(c, action, target, detail)
}

// consoleFailed answers a query that did not run: 400 with the page and the reason when the
// query is at fault (refused, rejected by the engine, over a limit), 422 when its result is
// larger than the console holds, 429 when too many console queries run; other errors go to
// the error page.
func (s *Server) consoleFailed(c *gin.Context, v views.ConsoleView, err error) error {
	var pe *paramError
	var ref *export.RefusedError
	var busy *export.BusyError
	status := http.StatusBadRequest
	tl, tooLarge := export.AsResultTooLarge(err)
	switch {
	case errors.As(err, &pe):
		v.Refused = pe.Msg
	case errors.As(err, &ref):
		v.Refused = ref.Reason
	case errors.As(err, &busy):
		status, v.Busy = http.StatusTooManyRequests, capitalize(busy.Error())+"."
		c.Header("Retry-After", "5")
	case tooLarge:
		status, v.TooLarge = http.StatusUnprocessableEntity, tooLargeAdvice(tl)
	case export.QueryError(err):
		// The engine's message on the analyst's own statement is the point of a console; an
		// address in it is not (errtext.go).
		v.Error = scrubURLs(strings.TrimPrefix(err.Error(), "read-only console: "))
	default:
		return err
	}
	s.reqLog(c).Info("console query not run", "status", status, "error", err)
	s.withHistory(c, &v)
	c.Header("Cache-Control", "no-store")
	return s.renderHTML(c, status, views.Console(v))
}

// tooLargeAdvice says what to do about a result too large for the console.
func tooLargeAdvice(tl *export.ResultTooLargeError) string {
	if tl.Block {
		return capitalize(tl.Error()) + ": its rows are too wide to stream; select fewer or narrower columns (or cut long values with substring())."
	}
	return capitalize(tl.Error()) + ", more than this page shows: download it, or add a LIMIT."
}

// consoleDownload answers POST /sql/download: the query's rows as a file (see the top of this
// file), streamed.
func (s *Server) consoleDownload(c *gin.Context) error {
	v := s.consoleView(c)
	if v.NotConfigured {
		return errUnavailable(msgNoExports)
	}
	r, err := s.parseExport(c.PostForm)
	if err != nil {
		return err
	}
	q, err := formQuery(c)
	v.Query = q
	if err != nil {
		return s.consoleFailed(c, v, err)
	}
	r.o.TZ, _ = loadZone(v.Page.TZ)
	start := time.Now()
	base := "query_" + start.UTC().Format("20060102-150405")
	m, err := s.download(c, r, base, func(w io.Writer) (*export.Manifest, error) {
		return s.exports.SQL(c.Request.Context(), consoleUser(c), q, w, r.o)
	})
	took := time.Since(start)
	failed := err != nil && !truncated(err)
	e := export.HistoryEntry{User: consoleUser(c), Query: q, Kind: r.what(), Duration: took, OK: !failed}
	detail := manifestDetail(r, m, err)
	detail["query"], detail["ms"] = q, took.Milliseconds()
	if m != nil {
		e.Rows, e.Limited = m.Rows, m.Truncated
	}
	if failed {
		e.Error = err.Error()
	}
	s.recordConsole(c, "sql.download", e, detail)
	if !failed {
		return nil
	}
	if err := s.abortStream(c, err); err != nil {
		return s.consoleFailed(c, v, err)
	}
	return nil
}

// consoleResult formats a result for the page: instants in loc, NULL marked, numbers right.
func consoleResult(res *export.ConsoleResult, took time.Duration, loc *time.Location) *views.ConsoleResult {
	out := &views.ConsoleResult{Limited: res.Limited, Summary: res.Summary() + " in " + formatElapsed(took)}
	instant := make([]bool, len(res.Columns))
	date := make([]bool, len(res.Columns))
	for i, col := range res.Columns {
		t := export.BaseType(col.Type)
		vc := views.ConsoleColumn{Name: col.Name, Type: col.Type}
		switch {
		case strings.HasPrefix(t, "DateTime"):
			instant[i], vc.Zone = true, loc.String()
		case strings.HasPrefix(t, "Date"):
			date[i] = true
		case strings.HasPrefix(t, "Int"), strings.HasPrefix(t, "UInt"), strings.HasPrefix(t, "Float"), strings.HasPrefix(t, "Decimal"):
			vc.Num = true
		}
		out.Columns = append(out.Columns, vc)
	}
	cellsOf := func(row []any) []views.ConsoleCell {
		cells := make([]views.ConsoleCell, len(row))
		for i, val := range row {
			cells[i] = consoleCell(val, i < len(date) && date[i], i < len(instant) && instant[i], loc)
		}
		return cells
	}
	for _, row := range res.Rows {
		out.Rows = append(out.Rows, cellsOf(row))
	}
	if res.Totals != nil {
		out.Totals = cellsOf(res.Totals)
	}
	out.TotalsError = capitalize(res.TotalsError)
	return out
}

// consoleCell is a value as the page shows it: dates as YYYY-MM-DD, instants in loc, floats
// in their shortest exact form, arrays, maps and tuples as JSON, NULL as NULL.
func consoleCell(v any, date, instant bool, loc *time.Location) views.ConsoleCell {
	switch x := v.(type) {
	case nil:
		return views.ConsoleCell{Text: "NULL", Null: true}
	case string:
		return views.ConsoleCell{Text: x}
	case time.Time:
		switch {
		case date:
			return views.ConsoleCell{Text: x.Format(time.DateOnly)}
		case instant:
			x = x.In(loc)
		}
		layout := "2006-01-02 15:04:05"
		if x.Nanosecond() != 0 {
			layout += ".999999999"
		}
		return views.ConsoleCell{Text: x.Format(layout)}
	case float64:
		return views.ConsoleCell{Text: strconv.FormatFloat(x, 'f', -1, 64)}
	case fmt.Stringer:
		return views.ConsoleCell{Text: x.String()}
	}
	if text, ok := export.CompositeText(v); ok {
		return views.ConsoleCell{Text: text}
	}
	return views.ConsoleCell{Text: fmt.Sprint(v)}
}

// binaryBytes states a memory limit as configured: "1 GiB", "512 MiB" (else in bytes).
func binaryBytes(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return views.FormatCount(n>>u.shift) + " " + u.name
		}
	}
	return views.FormatCount(n) + " bytes"
}

// formatElapsed is a duration for people: "12 ms", "1.2 s".
func formatElapsed(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
}
