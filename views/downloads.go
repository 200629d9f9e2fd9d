package views

import (
	"iter"
	"slices"
	"strings"
)

// Download is where a table offers its files: the CSV and XLSX of the table as the page shows
// it (see TableRef). Empty URLs hide the links (a role that may not export).
type Download struct {
	CSV, XLSX string
	// Note says what the files hold when it is more than the rows shown ("every run that
	// matches the filters, not only this page").
	Note string
}

// Grid is a table as a download holds it: its header and rows of text cells, as the page
// shows them (formatted, in the report time zone). Rows may be streamed from the store.
// Numeric[i] says column i holds numbers as the page formats them (1,234.50, -12.5%): a CSV
// writes them as they are, while every other cell is text, guarded against being run as a
// formula (export.Text). A column past Numeric's length is text.
type Grid struct {
	Head    []string
	Numeric []bool
	Rows    iter.Seq2[[]string, error]
}

// TableRef is one downloadable table of a page: ID names it on its page (?table=ID), Links is
// where the page shows its download links, Grid builds its content.
type TableRef struct {
	ID    string
	Links *Download
	Grid  func() Grid
}

// Tabular is a page's view model with downloadable tables: Tables lists them (pointers into
// the model, so the server can fill in their links before rendering).
type Tabular interface {
	Tables() []TableRef
}

// RowsOf streams rows held in memory.
func RowsOf(rows [][]string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// gridOf is a Grid of rows held in memory; numeric as Grid.Numeric.
func gridOf(head []string, numeric []bool, rows [][]string) Grid {
	return Grid{Head: head, Numeric: numeric, Rows: RowsOf(rows)}
}

// numericFrom marks the columns from the first'th of n as numeric.
func numericFrom(first, n int) []bool {
	out := make([]bool, n)
	for i := first; i < n; i++ {
		out[i] = true
	}
	return out
}

// numericAt marks columns at of n as numeric.
func numericAt(n int, at ...int) []bool {
	out := make([]bool, n)
	for _, i := range at {
		out[i] = true
	}
	return out
}

// Grid is the table's download: Numeric as the table says, else a chart's data table (its
// first column labels the points, the others are the series' formatted values).
func (t *Table) Grid() Grid {
	num := t.Numeric
	if num == nil {
		num = numericFrom(1, len(t.Head))
	}
	return gridOf(t.Head, num, t.Rows)
}

// ref is t as the downloadable table id (nil t: none).
func (t *Table) ref(id string) []TableRef {
	if t == nil {
		return nil
	}
	return []TableRef{{ID: id, Links: &t.Download, Grid: t.Grid}}
}

// chartRef is the data table of chart c, named by the chart's id (nil c: none).
func chartRef(c *Chart) []TableRef {
	if c == nil {
		return nil
	}
	return c.Table.ref(c.ID)
}

// Grid is the table's download: a cell with a second line is "text (second line)".
func (t *LinkTable) Grid() Grid {
	rows := make([][]string, len(t.Rows))
	for i, r := range t.Rows {
		row := make([]string, len(r))
		for j, c := range r {
			row[j] = c.Text
			if c.Sub != "" {
				row[j] += " (" + c.Sub + ")"
			}
		}
		rows[i] = row
	}
	return gridOf(t.Head, t.Num, rows)
}

// Grid is the table's download: key columns, a column per figure with its unit, the rows and
// then the totals.
func (t *ChannelTable) Grid() Grid {
	head := slices.Clone(t.KeyHead)
	for _, c := range t.Columns {
		h := c.Head
		if c.Unit != "" {
			h += " (" + c.Unit + ")"
		}
		head = append(head, h)
	}
	var rows [][]string
	for _, r := range slices.Concat(t.Rows, t.Totals) {
		rows = append(rows, slices.Concat(r.Keys, r.Cells))
	}
	return gridOf(head, numericFrom(len(t.KeyHead), len(head)), rows)
}

// Grid is the matrix's download: cohort, size, a cell per period, then the average row.
func (m *CohortMatrix) Grid() Grid {
	rows := make([]CohortRow, 0, len(m.Rows)+1)
	rows = append(rows, m.Rows...)
	if m.Average != nil {
		rows = append(rows, *m.Average)
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		row := []string{r.Label, r.Size}
		for _, c := range r.Cells {
			row = append(row, c.Text)
		}
		out[i] = row
	}
	return gridOf(m.Head, numericFrom(1, len(m.Head)), out)
}

// sectionRefs are the tables of customer-page sections: each section's chart table
// ("<id>-chart") and its table ("<id>").
func sectionRefs(sections ...*ListSection) []TableRef {
	var out []TableRef
	for _, s := range sections {
		if s == nil || s.Error != "" {
			continue
		}
		if s.Chart != nil {
			out = append(out, s.Chart.Table.ref(s.ID+"-chart")...)
		}
		if t := s.Table; t != nil && len(t.Rows) > 0 {
			out = append(out, TableRef{ID: s.ID, Links: &t.Download, Grid: t.Grid})
		}
	}
	return out
}

// Tables are the channel page's: the chart's table and the channel table.
func (v *ChannelsView) Tables() []TableRef {
	out := chartRef(v.Chart)
	if len(v.Table.Rows) > 0 || len(v.Table.Totals) > 0 {
		out = append(out, TableRef{ID: "channels", Links: &v.Table.Download, Grid: v.Table.Grid})
	}
	return out
}

// Tables are the retention page's: the matrix and the average curve's table.
func (v *RetentionView) Tables() []TableRef {
	var out []TableRef
	if v.Matrix != nil && len(v.Matrix.Rows) > 0 {
		out = append(out, TableRef{ID: "matrix", Links: &v.Matrix.Download, Grid: v.Matrix.Grid})
	}
	return append(out, chartRef(v.Curve)...)
}

// Tables are the funnel page's: the overall funnel and the funnel by channel.
func (v *FunnelView) Tables() []TableRef {
	return append(chartRef(v.Overall), chartRef(v.Channels)...)
}

// Tables are the customers page's: the search results and each section's tables.
func (v *CustomersView) Tables() []TableRef {
	secs := []*ListSection{v.Search.Results}
	for i := range v.Sections {
		secs = append(secs, &v.Sections[i])
	}
	return sectionRefs(secs...)
}

// Tables are a customer's: each section's tables.
func (v *Customer360View) Tables() []TableRef {
	secs := []*ListSection{&v.Profile, &v.Value}
	for i := range v.Sections {
		secs = append(secs, &v.Sections[i])
	}
	return sectionRefs(secs...)
}

// SourcesHead, RunsHead, CatalogHead, ReasonsHead and QuarantineHead are the columns of the
// data pages' downloads; the rows' Cells match them.
var (
	SourcesHead    = []string{"Source", "Entity", "Rows stored", "Also stored", "Last successful load", "Age", "Fresh", "Runs", "Last run status", "Rejected"}
	RunsHead       = []string{"Run", "Started", "Source", "Entity", "From", "Preset", "Status", "Error", "Read", "Loaded", "Rejected", "Duplicates", "Duration", "Size", "Warnings"}
	CatalogHead    = []string{"Metric", "Title", "Owner", "Kind", "Shape", "Unit", "Version", "Validates", "Error"}
	ReasonsHead    = []string{"Code", "Records", "Example reason"}
	QuarantineHead = []string{"Position", "File", "Source", "Entity", "Field", "Code", "Reason", "Record as received", "Run", "Rejected at"}
	UsersHead      = []string{"Email", "Name", "Role", "Status", "Created"}
	AuditHead      = []string{"Time", "Actor", "Action", "Target", "Detail", "Address"}
	// SourcesNumeric, RunsNumeric and ReasonsNumeric mark the count columns of those downloads
	// (Grid.Numeric); the other downloads' columns are all text.
	SourcesNumeric = numericAt(len(SourcesHead), 2, 7, 9)
	RunsNumeric    = numericAt(len(RunsHead), 8, 9, 10, 11)
	ReasonsNumeric = numericAt(len(ReasonsHead), 1)
)

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Cells is the row of the sources download.
func (r SourceRow) Cells() []string {
	also := ""
	for i, a := range r.Also {
		if i > 0 {
			also += "; "
		}
		also += a
	}
	return []string{r.Source, r.Entity, r.Rows, also, r.LastSuccess, r.Age, yesNo(!r.Stale), r.Runs, r.LastStatus, r.Rejected}
}

// Cells is the row of the runs download.
func (r RunRow) Cells() []string {
	return []string{r.ID, r.Started, r.Source, r.Entity, r.Origin, r.Preset, r.Status, r.Error, r.Read, r.Loaded, r.Rejected, r.Duplicates, r.Duration, r.Size,
		strings.Join(r.Warnings, "; ")}
}

// Cells is the row of the catalog download.
func (r CatalogRow) Cells() []string {
	return []string{r.Name, r.Title, r.Owner, r.Kind, r.Shape, r.Unit, r.Version, yesNo(r.Valid), r.Error}
}

// Cells is the row of the reason codes download.
func (r ReasonRow) Cells() []string { return []string{r.Code, r.Records, r.Example} }

// Cells is the row of the rejected records download.
func (r QuarantineRow) Cells() []string {
	return []string{r.Position, r.File, r.Source, r.Entity, r.Field, r.Code, r.Reason, r.Raw, r.RunID, r.At}
}

// Cells is the row of the users download.
func (r UserRow) Cells() []string {
	status := "active"
	if r.Disabled {
		status = "disabled"
	}
	return []string{r.Email, r.Name, r.Role, status, r.Created}
}

// Cells is the row of the audit log download.
func (r AuditRow) Cells() []string {
	return []string{r.At, r.Actor, r.Action, r.Target, r.Detail, r.IP}
}

// cellRows turns rows into their download cells.
func cellRows[R interface{ Cells() []string }](rows []R) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = r.Cells()
	}
	return out
}

// Tables are the data page's: sources, runs (this page's; the server streams every match) and
// the metric catalog.
func (v *DataView) Tables() []TableRef {
	var out []TableRef
	if v.SourcesError == "" && len(v.Sources) > 0 {
		out = append(out, TableRef{ID: "sources", Links: &v.SourcesDownload, Grid: func() Grid { return gridOf(SourcesHead, SourcesNumeric, cellRows(v.Sources)) }})
	}
	if v.Runs.Error == "" && len(v.Runs.Rows) > 0 {
		out = append(out, TableRef{ID: "runs", Links: &v.Runs.Download, Grid: func() Grid { return gridOf(RunsHead, RunsNumeric, cellRows(v.Runs.Rows)) }})
	}
	if v.CatalogError == "" && len(v.Catalog) > 0 {
		out = append(out, TableRef{ID: "catalog", Links: &v.CatalogDownload, Grid: func() Grid { return gridOf(CatalogHead, nil, cellRows(v.Catalog)) }})
	}
	if v.Rollups.Error == "" && len(v.Rollups.Rows) > 0 {
		out = append(out, TableRef{ID: "rollups", Links: &v.Rollups.Download, Grid: func() Grid { return gridOf(RollupsHead, RollupsNumeric, cellRows(v.Rollups.Rows)) }})
	}
	return out
}

// Tables are the quarantine browser's: the reason codes and the records (this page's; the
// server streams every match).
func (v *QuarantineView) Tables() []TableRef {
	var out []TableRef
	if v.ReasonsError == "" && len(v.Reasons) > 0 {
		out = append(out, TableRef{ID: "reasons", Links: &v.ReasonsDownload, Grid: func() Grid { return gridOf(ReasonsHead, ReasonsNumeric, cellRows(v.Reasons)) }})
	}
	if v.Error == "" && len(v.Records) > 0 {
		out = append(out, TableRef{ID: "records", Links: &v.RecordsDownload, Grid: func() Grid { return gridOf(QuarantineHead, nil, cellRows(v.Records)) }})
	}
	return out
}

// Tables are the users page's: the users.
func (v *AdminUsersView) Tables() []TableRef {
	if len(v.Users) == 0 {
		return nil
	}
	return []TableRef{{ID: "users", Links: &v.Download, Grid: func() Grid { return gridOf(UsersHead, nil, cellRows(v.Users)) }}}
}

// Tables are the audit page's: the entries (this page's; the server streams every match).
func (v *AdminAuditView) Tables() []TableRef {
	if len(v.Rows) == 0 {
		return nil
	}
	return []TableRef{{ID: "audit", Links: &v.Download, Grid: func() Grid { return gridOf(AuditHead, nil, cellRows(v.Rows)) }}}
}
