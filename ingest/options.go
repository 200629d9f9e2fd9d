package ingest

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultBatchRows is how many records are buffered before a flush.
const DefaultBatchRows = 50_000

// Options configure a run.
type Options struct {
	// Entity is the canonical entity; it may be empty when Mapping names one.
	Entity string
	// Mapping converts source records; nil means canonical field names.
	Mapping *Mapping
	// Preset is recorded in ingest_runs (the name the mapping was chosen by).
	Preset string
	// Source is the source name written to the facts (it scopes ids); default
	// the mapping's source, else its name, else "file".
	Source string
	// Format is csv, tsv or ndjson; default the mapping's, else from the file name.
	Format string
	// TZ is the zone of times without one; it overrides the mapping's.
	TZ *time.Location
	// BatchRows is the flush size (records); 0 means DefaultBatchRows.
	BatchRows int
	// MaxFieldBytes bounds a field; 0 means DefaultMaxFieldBytes.
	MaxFieldBytes int
	// MaxRecordBytes bounds one record of a file (a CSV/TSV record, an NDJSON
	// line, after gzip) while it is read: a longer one is rejected as too_long
	// and skipped without being held. 0 means DefaultMaxRecordBytes, or 4 ×
	// MaxFieldBytes when that is larger.
	MaxRecordBytes int
	// Host is recorded in ingest_runs.
	Host string
	// Log receives warnings; nil discards them.
	Log *slog.Logger
	// AfterFlush, when set, is called after each flush with the records
	// loaded so far (tests use it to stop a run at a known point).
	AfterFlush func(loaded int64)
	// OnReject, when set, is called for each rejected record, synchronously
	// from Add (or the file reader), before the reject is written to quarantine.
	OnReject func(Reject)
	// OnWritten, when set, is called after each batch is in the store with the
	// source records it settled (monitoring): loaded, rejected into quarantine,
	// and duplicates (in the run or already in the store). Summed over a run
	// they are the Summary's counts. It is called from the goroutine that
	// calls Add, Flush or Close. In CommitRun mode loaded rows are staged, not
	// yet visible.
	OnWritten func(Counts)
	// AfterAttach, when set, is called in CommitRun mode after the staged
	// rows of each table were attached to it (tests use it to stop a commit
	// half-way).
	AfterAttach func(table string)
	// Commit is CommitRun (default: staged, visible when the run succeeds)
	// or CommitBatch (each flush is stored as it is written).
	Commit string
	// AllOrNothing makes a run that rejected any record fail without storing
	// anything (its rejects stay in quarantine; the error is a *RejectsError).
	// Without it a run stores its valid records and quarantines the others.
	AllOrNothing bool
	// Unknown is what becomes of source columns (NDJSON or record fields)
	// the mapping does not read: "warn" (the run records their names as a
	// warning; the default, else the mapping's unknown) or "reject" (a file
	// whose header has one fails; a record with one is rejected).
	Unknown string
}

// Counts are source records by outcome.
type Counts struct {
	Loaded, Rejected, Duplicates int64
}

// Summary is the outcome of a run.
type Summary struct {
	RunID      string `json:"run_id"`
	Entity     string `json:"entity"`
	Source     string `json:"source"`
	Preset     string `json:"preset,omitempty"`
	File       string `json:"file,omitempty"`
	Status     string `json:"status"`
	Commit     string `json:"commit,omitempty"`
	Read       int64  `json:"read"`
	Loaded     int64  `json:"loaded"`
	Rejected   int64  `json:"rejected"`
	Duplicates int64  `json:"duplicates"`
	// NotStored counts the valid records of a run that failed in CommitRun
	// mode: staged, then dropped (Loaded is 0: nothing of the run is stored).
	NotStored  int64                  `json:"not_stored,omitempty"`
	Bytes      int64                  `json:"bytes"`
	Checksum   string                 `json:"checksum,omitempty"`
	Tables     map[string]*TableCount `json:"tables"`
	Warnings   []string               `json:"warnings,omitempty"`
	Rejects    []Reject               `json:"rejects,omitempty"`
	Error      string                 `json:"error,omitempty"`
	StartedAt  time.Time              `json:"started_at"`
	FinishedAt time.Time              `json:"finished_at"`
	Seconds    float64                `json:"seconds"`
}

// TableCount is what a run wrote to one table: rows written and rows left
// out because the store already held them with identical content.
type TableCount struct {
	Written    int64 `json:"written"`
	Duplicates int64 `json:"duplicates"`
}

// Reject is a rejected record (the first few are kept in the Summary; all are in quarantine).
type Reject struct {
	File   string `json:"file,omitempty"`
	Line   int64  `json:"line"`
	Field  string `json:"field,omitempty"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func (r Reject) String() string {
	var b strings.Builder
	if r.File != "" {
		b.WriteString(r.File + " ")
	}
	fmt.Fprintf(&b, "line %d", r.Line)
	if r.Field != "" {
		b.WriteString(" field " + r.Field)
	}
	b.WriteString(": " + r.Reason)
	return b.String()
}

// maxSummaryRejects is how many rejects a Summary lists.
const maxSummaryRejects = 20

// Record is one record pushed from Go (events API, demo data): source field
// names to values (canonical names when the Loader has no mapping) and its
// position in the source (from 1).
type Record struct {
	Line   int64
	Fields map[string]string
	Raw    string // as received; built from Fields when empty
}

// Stats are a running load's counters, safe to read from another goroutine.
type Stats struct {
	Read  atomic.Int64
	Bytes atomic.Int64 // bytes of the file read so far (compressed size for gzip)
}
