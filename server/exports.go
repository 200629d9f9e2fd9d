package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/metrics"
)

// Exports is what the server needs of the export engine and the SQL console; export.Service
// implements it over the store and the metrics registry.
type Exports interface {
	// Metric exports a metric's result (export.Metric).
	Metric(ctx context.Context, name string, p metrics.Params, w io.Writer, o export.Options) (*export.Manifest, error)
	// SQL exports a read-only query's rows, streamed, under the console's limits, as one of
	// user's console queries (export.SQL; an *export.BusyError when too many run).
	SQL(ctx context.Context, user, query string, w io.Writer, o export.Options) (*export.Manifest, error)
	// Run runs a read-only query in the console, holding at most Limits().MaxRows rows and
	// MaxResultBytes bytes, as one of user's console queries (an *export.BusyError when too
	// many run).
	Run(ctx context.Context, user, query string) (*export.ConsoleResult, error)
	// Limits are the console's limits (rows and bytes shown, time, memory, …); Gate its
	// bounds on queries running at once (nil: none).
	Limits() export.Console
	ConsoleGate() *export.Gate
	// Record appends an entry to its user's console history; History lists a user's latest
	// entries, newest first; Entry is one of them (export.ErrNoEntry for another user's).
	Record(ctx context.Context, e export.HistoryEntry) error
	History(ctx context.Context, user string, limit int) ([]export.HistoryEntry, error)
	Entry(ctx context.Context, user, id string) (export.HistoryEntry, error)
}

var _ Exports = (*export.Service)(nil)

// Downloads. Every export (a metric, a console query, a dashboard table) takes these
// parameters, in the URL or, for the console's POST, in the form:
//
//	format     csv (default) | xlsx
//	preset     excel: UTF-8 BOM, CRLF
//	raw        1: raw values (full precision, fractions, ISO dates); default formatted
//	csv_raw    1: CSV for programs: text cells as stored. By default a text cell a spreadsheet
//	           would run as a formula (starting with = + - @ tab CR) gets a leading apostrophe
//	delimiter  , (default) | ; | tab | "|" (also comma, semicolon, pipe: a raw ";" in a URL is
//	           dropped by Go's query parser, so send %3B or the name)
//	decimal    . (default) | , (also point, comma)
//	bom        1: a UTF-8 byte order mark first (CSV)
//	crlf       1: lines end in CR LF (CSV)
//	manifest   1: the manifest alone (JSON): what produced the file, its rows, SHA-256, sources
//	bundle     zip: a zip of the file and its manifest (NAME.EXT and NAME.EXT.manifest.json)
//
// A bad value is a 400 naming the parameter. The file holds at most Config.ExportMaxRows data
// rows (an XLSX sheet at most export.XLSXMaxRows); a longer result ends with a "TRUNCATED: …"
// line, and the manifest says truncated: true: never silently.
type exportRequest struct {
	o        export.Options
	manifest bool
	zip      bool
}

// exportTimeout bounds a metric or table export (a console download has the console's time
// limit).
const exportTimeout = 2 * time.Minute

// msgNoExports answers the downloads and the console when the server has no export engine.
const msgNoExports = "Exports and the SQL console are not configured on this server (it has no store to run them on)."

// exportParams are the parameters exportRequest reads; pages drop them from the links they
// build from their own URL.
var exportParams = []string{"format", "preset", "raw", "csv_raw", "delimiter", "decimal", "bom", "crlf", "manifest", "bundle", tableParam}

// parseExport reads a download's parameters with get (c.Query, c.PostForm).
func (s *Server) parseExport(get func(string) string) (exportRequest, error) {
	r := exportRequest{o: export.Options{Version: s.version, MaxRows: s.cfg.ExportMaxRows}}
	flag := func(name string) (bool, error) {
		switch v := get(name); v {
		case "", "0", "false":
			return false, nil
		case "1", "true":
			return true, nil
		default:
			return false, badParam(name, v, "allowed are 1 and 0")
		}
	}
	var err error
	switch f := get("format"); f {
	case "", "csv":
		r.o.Format = export.CSV
	case "xlsx":
		r.o.Format = export.XLSX
	default:
		return r, badParam("format", f, "allowed are csv, xlsx")
	}
	switch p := get("preset"); p {
	case "", "excel":
		r.o.Preset = p
	default:
		return r, badParam("preset", p, "allowed is excel")
	}
	switch d := get("delimiter"); d {
	case "", ",", "comma":
		r.o.Delimiter = ','
	case ";", "semicolon":
		r.o.Delimiter = ';'
	case "|", "pipe":
		r.o.Delimiter = '|'
	case "tab", "\t", `\t`:
		r.o.Delimiter = '\t'
	default:
		return r, badParam("delimiter", d, `allowed are "," ";" "|" and "tab" (or comma, semicolon, pipe)`)
	}
	switch d := get("decimal"); d {
	case "", ".", "point":
		r.o.Decimal = '.'
	case ",", "comma":
		r.o.Decimal = ','
	default:
		return r, badParam("decimal", d, `allowed are "." and "," (or point, comma)`)
	}
	if r.o.Decimal == r.o.Delimiter {
		return r, &paramError{Param: "decimal", Msg: `The decimal separator "," is also the delimiter: use delimiter=; with decimal=, (as Excel does in German, French, … regions).`}
	}
	if r.o.Raw, err = flag("raw"); err != nil {
		return r, err
	}
	if r.o.CSVRaw, err = flag("csv_raw"); err != nil {
		return r, err
	}
	if r.o.CSVRaw && (r.o.Format != export.CSV || r.o.Preset != "") {
		return r, &paramError{Param: "csv_raw", Msg: "csv_raw=1 is CSV for programs (text as stored); it goes with format=csv and without preset=excel, whose text is made safe for Excel."}
	}
	if r.o.BOM, err = flag("bom"); err != nil {
		return r, err
	}
	if r.o.CRLF, err = flag("crlf"); err != nil {
		return r, err
	}
	if r.manifest, err = flag("manifest"); err != nil {
		return r, err
	}
	switch b := get("bundle"); b {
	case "":
	case "zip":
		r.zip = true
	default:
		return r, badParam("bundle", b, "allowed is zip")
	}
	if r.manifest && r.zip {
		return r, &paramError{Param: "manifest", Msg: "Ask for the manifest alone (manifest=1) or for the file with its manifest (bundle=zip), not both."}
	}
	return r, nil
}

// ext is the data file's extension.
func (r exportRequest) ext() string { return "." + string(r.o.Format) }

// contentType is the data file's media type.
func (r exportRequest) contentType() string {
	if r.o.Format == export.XLSX {
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}

// what names the download in the audit log: "csv", "xlsx", "manifest", "zip".
func (r exportRequest) what() string {
	switch {
	case r.manifest:
		return "manifest"
	case r.zip:
		return "zip"
	}
	return string(r.o.Format)
}

// exportError turns an export's error into what the client is told: a bad parameter of the
// metrics layer is a 400 naming it.
func exportError(err error) error {
	var pe *metrics.ParamError
	if errors.As(err, &pe) {
		return &paramError{Param: pe.Param, Msg: fmt.Sprintf("Invalid parameter %q: %s.", pe.Param, pe.Reason)}
	}
	return err
}

// truncated tells whether err is only that the export was cut at its row limit (the file is
// complete and says so).
func truncated(err error) bool { return errors.Is(err, export.ErrTruncated) }

// lazyWriter sets a download's headers on its first byte, so an export that fails before
// writing anything can still answer with an error page.
type lazyWriter struct {
	c       *gin.Context
	headers func()
	started bool
}

func (w *lazyWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.started = true
		w.headers()
		w.c.Status(http.StatusOK)
	}
	return w.c.Writer.Write(p)
}

// download writes an export to the response as r asks: the file, its manifest alone, or a zip
// of both; base names the file (without extension). run writes the export to w. It returns
// run's manifest and error; an error (other than truncation) after bytes have gone out is a
// *streamError, and the caller, once it has recorded the failure, ends the response with
// abortStream so the client sees a failed download rather than a short file.
func (s *Server) download(c *gin.Context, r exportRequest, base string, run func(w io.Writer) (*export.Manifest, error)) (*export.Manifest, error) {
	file := base + r.ext()
	lw := &lazyWriter{c: c}
	var m *export.Manifest
	var err error
	switch {
	case r.manifest:
		m, err = run(io.Discard)
		if m == nil || err != nil && !truncated(err) {
			return m, err
		}
		m.File = file
		c.Header("Cache-Control", "no-store")
		c.Header("Content-Disposition", `inline; filename="`+file+`.manifest.json"`)
		c.JSON(http.StatusOK, m)
		return m, err
	case r.zip:
		lw.headers = func() {
			c.Header("Content-Type", "application/zip")
			c.Header("Content-Disposition", `attachment; filename="`+base+`.zip"`)
			c.Header("Cache-Control", "no-store")
		}
		zw := zip.NewWriter(lw)
		entry := &zipEntry{create: func() (io.Writer, error) {
			return zw.CreateHeader(&zip.FileHeader{Name: file, Method: zip.Deflate, Modified: time.Now().UTC()})
		}}
		m, err = run(entry)
		if m != nil && m.SHA256 != "" && (err == nil || truncated(err)) {
			m.File = file
			if zerr := writeManifestEntry(zw, m); zerr != nil {
				return m, zerr
			}
		}
	default:
		lw.headers = func() {
			c.Header("Content-Type", r.contentType())
			c.Header("Content-Disposition", `attachment; filename="`+file+`"`)
			c.Header("Cache-Control", "no-store")
		}
		m, err = run(lw)
		if m != nil {
			m.File = file
		}
	}
	if err != nil && !truncated(err) && lw.started {
		return m, &streamError{err}
	}
	if !lw.started && (err == nil || truncated(err)) { // an empty file cannot be: a header row at least
		lw.Write(nil)
	}
	return m, err
}

// streamError is a download that failed after its first bytes went out.
type streamError struct{ err error }

func (e *streamError) Error() string { return "download failed after it started: " + e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// abortStream ends the response of a download that failed part way (a *streamError): the
// connection is cut, so the client cannot take the short file for a whole one. Other errors are
// returned as they are.
func (s *Server) abortStream(c *gin.Context, err error) error {
	var se *streamError
	if errors.As(err, &se) {
		s.reqLog(c).Error("download failed after it started; the response is cut", "error", se.err)
		panic(http.ErrAbortHandler)
	}
	return err
}

// zipEntry is a zip entry created on its first byte (so a failed export writes no zip).
type zipEntry struct {
	create func() (io.Writer, error)
	w      io.Writer
}

func (z *zipEntry) Write(p []byte) (int, error) {
	if z.w == nil {
		w, err := z.create()
		if err != nil {
			return 0, err
		}
		z.w = w
	}
	return z.w.Write(p)
}

// writeManifestEntry adds m as the zip's second entry (FILE.manifest.json) and closes it.
func writeManifestEntry(zw *zip.Writer, m *export.Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mw, err := zw.CreateHeader(&zip.FileHeader{Name: m.File + ".manifest.json", Method: zip.Deflate, Modified: m.GeneratedAt})
	if err != nil {
		return err
	}
	if _, err := mw.Write(append(b, '\n')); err != nil {
		return err
	}
	return zw.Close()
}

// auditExport records an export in the audit log; a server without an audit log (no access
// service) records nothing, and a failed write is logged (the download has happened).
func (s *Server) auditExport(c *gin.Context, action, target string, detail map[string]any) {
	err := access.Audit(context.WithoutCancel(c.Request.Context()), "", action, target, detail)
	if err != nil && !errors.Is(err, access.ErrNoAuditLog) {
		s.reqLog(c).Error("audit log", "action", action, "target", target, "error", err)
	}
}

// manifestDetail is what the audit log keeps of an export: its format, size and checksum.
func manifestDetail(r exportRequest, m *export.Manifest, err error) map[string]any {
	d := map[string]any{"format": r.what()}
	if m != nil {
		d["rows"], d["bytes"], d["sha256"], d["truncated"] = m.Rows, m.Bytes, m.SHA256, m.Truncated
	}
	if err != nil && !truncated(err) {
		d["error"] = err.Error()
	}
	return d
}

// exportMetric answers a metric export (GET /api/v1/export/metric/:name, /kpi/:name.csv,
// /api/v1/metrics/:name?format=csv): the KPI page's parameters (range, from, to, grain,
// compare, tz, by, f.<dim>), arg.<name> for a custom metric's declared parameters, and the
// download parameters (see exportRequest). The export is built in memory (a metric's result is
// one row per bucket and breakdown value), so any error is answered before a byte is sent.
func (s *Server) exportMetric(c *gin.Context, name string) error {
	if err := needRole(c, finance); err != nil {
		return err
	}
	if s.metrics == nil {
		return errUnavailable(msgNotConfigured)
	}
	r, err := s.parseExport(c.Query)
	if err != nil {
		return err
	}
	f, err := s.filters(c)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	info, err := s.definition(ctx, name)
	if err != nil {
		return err
	}
	if err := checkQueryable(info, f); err != nil {
		return err
	}
	if s.exports == nil {
		return errUnavailable(msgNoExports)
	}
	q := f.Query(info.Dimensions, f.By)
	q.Args = metricArgs(c.Request.URL.Query())
	p, err := metricParams(q, s.cfg.WeekStart, s.cfg.FiscalYearStartMonth)
	if err != nil {
		return err
	}
	r.o.Currency, r.o.TZ = info.Currency, f.Loc
	ctx, cancel := context.WithTimeout(ctx, exportTimeout)
	defer cancel()
	var buf bytes.Buffer
	m, err := s.exports.Metric(ctx, info.Name, p, &buf, r.o)
	if err != nil && !truncated(err) {
		if ctx.Err() != nil && c.Request.Context().Err() == nil {
			return httpError{status: http.StatusGatewayTimeout, msg: fmt.Sprintf("The export of %s did not finish within %s; narrow the range.", name, exportTimeout)}
		}
		return exportError(err)
	}
	base := fmt.Sprintf("%s_%s_%s", info.Name, f.From.Format(dateLayout), f.InclusiveTo().Format(dateLayout))
	if !r.manifest && !r.zip {
		c.Header("X-Content-SHA256", m.SHA256)
	}
	detail := manifestDetail(r, m, nil)
	detail["params"] = export.ParamValues(p).Encode()
	s.auditExport(c, "export", "metric:"+info.Name, detail)
	_, err = s.download(c, r, base, func(w io.Writer) (*export.Manifest, error) {
		_, werr := w.Write(buf.Bytes())
		return m, werr
	})
	if truncated(err) {
		return nil
	}
	return err
}

// definition looks a metric up among every definition the user may see (series and table
// shaped): unknown or hidden is a 404.
func (s *Server) definition(ctx context.Context, name string) (MetricInfo, error) {
	defs, err := s.metrics.Definitions(ctx)
	return findMetric(ctx, name, defs, err)
}

// metricArgs are the arg.<name> parameters: a custom metric's declared parameters (the
// metrics layer validates them).
func metricArgs(q url.Values) map[string]string {
	args := map[string]string{}
	for k, vs := range q {
		if name, ok := strings.CutPrefix(k, "arg."); ok && name != "" && len(vs) > 0 {
			args[name] = vs[len(vs)-1]
		}
	}
	return args
}

// apiExportMetric answers GET /api/v1/export/metric/:name (see exportMetric).
func (s *Server) apiExportMetric(c *gin.Context) error { return s.exportMetric(c, c.Param("name")) }

// metricExportURL is the metric export of name with the filters f (by: the breakdown, "" for
// none) and the extra parameters kv (name, value, …).
func metricExportURL(f Filters, name, by string, kv ...string) string {
	return f.URL("/api/v1/export/metric/"+url.PathEscape(name), func(q url.Values) {
		q.Del("view")
		q.Del("by")
		if by != "" {
			q.Set("by", by)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
	})
}
