package views

import (
	"fmt"
	"math"
	"time"
)

// View models of the data pages (/data and /data/quarantine). Every value is formatted by the
// server; URLs keep the page's parameters so a copied link opens the same view.

// DataView is the data page: sources, ingest runs, the quarantine and the metric catalog.
type DataView struct {
	Page Page
	// StaleAfter states the freshness threshold, e.g. "48 hours".
	StaleAfter string
	// AsOf is when the sources were read, formatted in the report zone.
	AsOf         string
	Sources      []SourceRow
	SourcesError string
	Quarantine   QuarantineSummary
	Runs         RunsSection
	Catalog      []CatalogRow
	CatalogError string
	// Rollups are the rollup tables and their freshness (nothing when MetricsNotConfigured).
	Rollups RollupsSection
	// SourcesDownload and CatalogDownload offer those tables as files (empty: no links).
	SourcesDownload, CatalogDownload Download
	// MetricsNotConfigured: the server has no metrics layer, so there is no catalog.
	MetricsNotConfigured bool
}

// SourceRow is what one source delivered for one entity.
type SourceRow struct {
	Source, Entity string
	Rows           string
	// Also lists further tables its runs wrote, with their rows ("86 order_lines").
	Also []string
	// LastSuccess is the end of the latest successful run ("never" when none succeeded); Age is
	// how long ago; Stale marks a source past the threshold or without a success.
	LastSuccess, Age string
	Stale            bool
	Runs, LastStatus string
	Rejected         string
	// RunsURL lists its runs; QuarantineURL its rejected records (empty when there are none).
	RunsURL, QuarantineURL string
}

// QuarantineSummary is the data page's link to the quarantine browser.
type QuarantineSummary struct {
	URL     string
	Total   string // records in quarantine
	Reasons []ReasonRow
	Error   string
}

// RunsSection is the ingest runs table with its filters and pager.
type RunsSection struct {
	Filter DataFilter
	Rows   []RunRow
	Pager  Pager
	Error  string
	// Download offers the runs as a file (empty: no links).
	Download Download
}

// RunRow is one ingest run.
type RunRow struct {
	ID, Started, Source, Entity string
	// Origin is where the records came from: the file, or the stream.
	Origin, Preset string
	Status, Error  string
	// Warnings are what the run ignored or noticed (e.g. columns not in the mapping).
	Warnings       []string
	Read, Loaded   string
	Rejected       string
	Duplicates     string
	Duration, Size string
	// QuarantineURL lists the run's rejected records; empty when it has none.
	QuarantineURL string
}

// DataFilter is a GET form of select and text fields; its Active filters have remove links.
type DataFilter struct {
	Action string
	Fields []FormField
	Hidden []Option
	Active []DimFilter
	// ResetURL clears every filter.
	ResetURL string
}

// FormField is a select (Options set) or a text input.
type FormField struct {
	Name, Label, Value string
	Options            []Option
	Placeholder        string
	// Pattern is the text input's HTML pattern; Size its width in characters.
	Pattern string
	Size    int
}

// Pager describes one page of a list and links to its neighbours.
type Pager struct {
	// Summary is "Showing 1–50 of 1,234 runs" (or that nothing matches).
	Summary          string
	Page, Pages      int
	PrevURL, NextURL string
	// Past is set when the page asked for is after the last; LastURL opens the last.
	Past    bool
	LastURL string
}

// CatalogRow is one metric definition.
type CatalogRow struct {
	// ID is the row's HTML id ("metric-<name>"); Name is the metric's name, or the file of a
	// definition that could not be read.
	ID                       string
	Name, Title, Owner, Kind string
	Unit, Version, Shape     string
	// Href is its KPI page (series-shaped valid metrics only).
	Href  string
	Valid bool
	// Error is why it does not validate (file:line: reason).
	Error string
}

// QuarantineView is the quarantine browser.
type QuarantineView struct {
	Page    Page
	DataURL string
	Filter  DataFilter
	// Reasons are the record counts per reason code under the filters other than the code.
	Reasons      []ReasonRow
	ReasonsError string
	Records      []QuarantineRow
	Pager        Pager
	Error        string
	// ReasonsDownload and RecordsDownload offer those tables as files (empty: no links).
	ReasonsDownload, RecordsDownload Download
}

// ReasonRow is the number of records with one reason code.
type ReasonRow struct {
	Code, Records, Example string
	// Href filters the quarantine by the code; Current marks the code filtered by.
	Href    string
	Current bool
}

// QuarantineRow is one rejected record.
type QuarantineRow struct {
	// Position is "orders.csv:10" (or "record 10" for a stream); File is the full path.
	Position, File string
	Entity, Source string
	Field, Code    string
	Reason, Raw    string
	// RunShort is the run id's first block, RunURL filters by the run; CodeURL by the code.
	RunID, RunShort, RunURL string
	CodeURL, At             string
}

// FormatCount formats a count with thousands separators.
func FormatCount(n int64) string { return FormatNumber(float64(n), 0) }

// FormatBytes formats a size in bytes: "512 B", "1.5 KB", "12.3 MB" (powers of 1,000).
func FormatBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	x := float64(n)
	for _, u := range []string{"KB", "MB", "GB", "TB"} {
		x /= 1000
		if x < 1000 || u == "TB" {
			return FormatNumber(x, 1) + " " + u
		}
	}
	return ""
}

// FormatDuration formats a run's duration: "850 ms", "4.2 s", "3 min 12 s", "2 h 05 min".
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return NoData
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return FormatNumber(d.Seconds(), 1) + " s"
	case d < time.Hour:
		s := int64(math.Round(d.Seconds()))
		return fmt.Sprintf("%d min %02d s", s/60, s%60)
	}
	return formatMinutes(d.Minutes())
}

// FormatAge says how long ago something happened: "just now", "12 min ago", "5 h ago",
// "3 days ago".
func FormatAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
