package server

import (
	"fmt"
	"io"
	"iter"
	"net/url"
	"slices"
	"strings"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/export"
	"github.com/converge-dev/converge/views"
)

// Table downloads. Every table a page shows can be downloaded, for finance and up, from the
// page's own URL with ?table=ID&format=csv|xlsx (and the other download parameters, see
// exportRequest): the same handler builds the same view model, with the same filters, and
// writes the table instead of the page. A page's view model lists its tables (views.Tabular);
// the page shows each one's "Download CSV · XLSX" links to finance and up, and none to
// executives. The file holds the table as the page shows it: formatted text in the report
// time zone (the KPIs' raw numbers are in the metric exports, which the KPI tables link to). A
// paginated table (ingest runs, rejected records, the audit log) downloads every row that
// matches the page's filters, streamed from the store, not only the page shown. At most
// Config.ExportMaxRows rows; a longer table is cut and says so in its last line.

// tableParam names the table to download in a page's URL.
const tableParam = "table"

// tableStream replaces a table's download by every row matching the page's filters (a
// paginated table): head and the rows, streamed.
type tableStream struct {
	id   string
	note string // what the links say the file holds
	grid func() views.Grid
}

// renderTables renders a page with downloadable tables: with ?table=ID it writes that table
// as a file (finance and up); otherwise the page, each table with its download links for
// finance and up. page builds the component from v after the links are set; streams replace
// the downloads of paginated tables.
func (s *Server) renderTables(c *gin.Context, status int, v views.Tabular, page func() templ.Component, streams ...tableStream) error {
	return s.renderTablesAt(c, c.Request.URL, status, v, page, streams...)
}

// renderTablesAt is renderTables for a page whose own URL is at, not the request's (a page
// rendered in answer to a form post).
func (s *Server) renderTablesAt(c *gin.Context, at *url.URL, status int, v views.Tabular, page func() templ.Component, streams ...tableStream) error {
	refs := v.Tables()
	for _, st := range streams {
		for i := range refs {
			if refs[i].ID == st.id {
				refs[i].Grid = st.grid
				refs[i].Links.Note = st.note
			}
		}
	}
	if id := c.Query(tableParam); id != "" {
		return s.downloadTable(c, refs, id)
	}
	if roleOf(c).Includes(finance) {
		for _, r := range refs {
			r.Links.CSV = tableURL(at, r.ID, "csv")
			r.Links.XLSX = tableURL(at, r.ID, "xlsx")
		}
	} else {
		for _, r := range refs {
			*r.Links = views.Download{}
		}
	}
	return s.renderHTML(c, status, page())
}

// tableURL is the page u's download of table id in format.
func tableURL(u *url.URL, id, format string) string {
	q := u.Query()
	for _, p := range exportParams {
		q.Del(p)
	}
	q.Set(tableParam, id)
	q.Set("format", format)
	return u.Path + "?" + q.Encode()
}

// downloadTable writes table id of refs as the request's download parameters ask.
func (s *Server) downloadTable(c *gin.Context, refs []views.TableRef, id string) error {
	if err := needRole(c, finance); err != nil {
		return err
	}
	r, err := s.parseExport(c.Query)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(refs, func(t views.TableRef) bool { return t.ID == id })
	if i < 0 {
		ids := make([]string, len(refs))
		for j, t := range refs {
			ids[j] = t.ID
		}
		shown := "this page shows no table now"
		if len(ids) > 0 {
			shown = "this page shows " + strings.Join(ids, ", ")
		}
		return &paramError{Param: tableParam, Msg: fmt.Sprintf("There is no table %q on this page now: %s.", id, shown)}
	}
	g := refs[i].Grid()
	r.o.TZ, _ = loadZone(s.reportTZ(c))
	base := strings.Trim(strings.ReplaceAll(strings.TrimPrefix(c.Request.URL.Path, "/"), "/", "_"), "_")
	if base == "" {
		base = "overview"
	}
	base += "_" + id
	m, err := s.download(c, r, base, func(w io.Writer) (*export.Manifest, error) {
		m, err := export.Text(w, g.Head, g.Numeric, g.Rows, r.o)
		if m != nil {
			m.Params = c.Request.URL.Query()
		}
		return m, err
	})
	target := "table:" + c.Request.URL.Path + "#" + id
	detail := manifestDetail(r, m, err)
	detail["url"] = c.Request.URL.RequestURI()
	s.auditExport(c, "export", target, detail)
	if truncated(err) {
		return nil
	}
	return s.abortStream(c, err)
}

// paged streams every item of a paginated list: fetch(offset, limit) returns a page, which
// row turns into cells, until a page comes back short. Memory holds one page at a time.
func paged[T any](pageSize int, fetch func(offset, limit int) ([]T, error), row func(T) []string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		for offset := 0; ; offset += pageSize {
			items, err := fetch(offset, pageSize)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, it := range items {
				if !yield(row(it), nil) {
					return
				}
			}
			if len(items) < pageSize {
				return
			}
		}
	}
}

// streamPageSize is how many rows a paginated table's download reads from the store at a time.
const streamPageSize = 1000

// metricDownload is the download links of a KPI table: the metric export (by: its breakdown,
// "" for none), for finance and up; none for executives.
func metricDownload(c *gin.Context, f Filters, name, by string) views.Download {
	if !roleOf(c).Includes(finance) {
		return views.Download{}
	}
	return views.Download{CSV: metricExportURL(f, name, by), XLSX: metricExportURL(f, name, by, "format", "xlsx")}
}

// tileDownloads links each tile's data table to its metric's export.
func tileDownloads(c *gin.Context, f Filters, tiles []views.TileView) {
	for i := range tiles {
		if t := &tiles[i]; t.Spark != nil && t.Error == "" {
			t.Spark.Table.Download = metricDownload(c, f, t.Name, "")
		}
	}
}
