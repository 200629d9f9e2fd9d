package ingest

import (
	"context"
	"embed"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/converge-dev/converge/warehouse"
)

// The catalog's queries, one per file (see queries/*.sql for what each returns).
//
//go:embed queries/*.sql
var queryFiles embed.FS

func query(name string) string {
	b, err := queryFiles.ReadFile("queries/" + name + ".sql")
	if err != nil {
		panic(fmt.Sprintf("ingest: embedded query %s: %v", name, err))
	}
	return string(b)
}

// Run statuses in ingest_runs.
const (
	StatusRunning = "running"
	// StatusCommitting: the run's staged rows are being attached to the
	// tables (its counts are final); a run left committing by a process that
	// ended is finished at the next start (Recover).
	StatusCommitting = "committing"
	StatusSucceeded  = "succeeded"
	StatusFailed     = "failed"
)

// RunStatuses lists the statuses a run can have.
func RunStatuses() []string {
	return []string{StatusRunning, StatusCommitting, StatusSucceeded, StatusFailed}
}

// Catalog reads what the ingest path recorded in a store: which sources delivered what
// (Sources), the runs (Runs) and the rejected records (Quarantine, QuarantineReasons).
// It only reads; every value reaches SQL as a bound parameter.
type Catalog struct {
	st *warehouse.Store
}

// NewCatalog reads st's ingest bookkeeping.
func NewCatalog(st *warehouse.Store) *Catalog { return &Catalog{st: st} }

// SourceStat is what one source delivered for one entity. Source is the name written with
// the records (a preset's source such as shopify, events, a demo system such as crm); it is
// "" for runs recorded before converge kept it.
type SourceStat struct {
	Source, Entity string
	// Rows is the number of rows of the entity's table from this source, deduplicated as the
	// metrics read them.
	Rows int64
	// Also are the other tables the entity's runs wrote for this source (a lines-mode orders
	// run writes order_lines and refunds), with their rows.
	Also []TableRows
	// Runs is the number of runs; LastRun is the start of the latest (zero when there is no run
	// recorded), LastStatus its status.
	Runs       int64
	LastRun    time.Time
	LastStatus string
	// LastSuccess is the end of the latest run that succeeded; zero when none did.
	LastSuccess time.Time
	// Rejected is the number of records rejected over all runs.
	Rejected int64
}

// TableRows is a table and its row count.
type TableRows struct {
	Table string
	Rows  int64
}

// SourceReport is every source with its entities, by source then entity.
type SourceReport struct {
	// AsOf is when the report was read (the reference for the age of the last load).
	AsOf    time.Time
	Sources []SourceStat
}

// Sources reports, per source and entity, the rows stored, the runs, the last successful
// load and the rejected records. Stored rows are counted with FINAL, so the cost grows with
// the tables.
func (c *Catalog) Sources(ctx context.Context) (SourceReport, error) {
	rep := SourceReport{AsOf: time.Now().UTC()}
	type key struct{ source, entity string }
	byKey := map[key]*SourceStat{}
	get := func(k key) *SourceStat {
		s := byKey[k]
		if s == nil {
			s = &SourceStat{Source: k.source, Entity: k.entity}
			byKey[k] = s
		}
		return s
	}

	rows, err := c.st.Conn.Query(ctx, query("sources_runs"))
	if err != nil {
		return rep, fmt.Errorf("runs per source: %w", err)
	}
	for rows.Next() {
		var k key
		var runs, rejected uint64
		var last time.Time
		var status string
		var success *time.Time
		if err := rows.Scan(&k.source, &k.entity, &runs, &last, &status, &success, &rejected); err != nil {
			rows.Close()
			return rep, fmt.Errorf("runs per source: %w", err)
		}
		s := get(k)
		s.Runs, s.LastRun, s.LastStatus, s.Rejected = int64(runs), last, status, int64(rejected)
		if success != nil {
			s.LastSuccess = *success
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("runs per source: %w", err)
	}

	rows, err = c.st.Conn.Query(ctx, query("sources_stored"))
	if err != nil {
		return rep, fmt.Errorf("rows per source: %w", err)
	}
	for rows.Next() {
		var table, source, runEntity string
		var n uint64
		if err := rows.Scan(&table, &source, &n, &runEntity); err != nil {
			rows.Close()
			return rep, fmt.Errorf("rows per source: %w", err)
		}
		own := key{source, table}
		if _, ok := byKey[own]; ok || runEntity == "" || runEntity == table {
			get(own).Rows = int64(n)
			continue
		}
		// Written by runs of another entity of this source (lines mode): shown with them.
		s := get(key{source, runEntity})
		s.Also = append(s.Also, TableRows{Table: table, Rows: int64(n)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("rows per source: %w", err)
	}

	for _, s := range byKey {
		rep.Sources = append(rep.Sources, *s)
	}
	sort.Slice(rep.Sources, func(i, j int) bool {
		a, b := rep.Sources[i], rep.Sources[j]
		return a.Source < b.Source || a.Source == b.Source && a.Entity < b.Entity
	})
	return rep, nil
}

// RunFilter selects runs; an empty field matches any value.
type RunFilter struct {
	Source string // record source, e.g. shopify
	Entity string
	Status string // running, succeeded, failed
}

func (f RunFilter) params() []any {
	return []any{clickhouse.Named("source", f.Source), clickhouse.Named("entity", f.Entity), clickhouse.Named("status", f.Status)}
}

// Run is one ingest run (its latest row in ingest_runs).
type Run struct {
	ID, Entity string
	// Source is the source written with the records; Origin is where they came from: the file
	// path, or the stream (events) when there was no file.
	Source, Origin, Preset string
	StartedAt              time.Time
	FinishedAt             time.Time // zero while running (or when a run was killed)
	Status                 string
	Read, Loaded           int64
	Rejected, Duplicates   int64
	Bytes                  int64
	Error                  string
	// Warnings are what the run ignored or noticed (e.g. columns not in the mapping).
	Warnings []string
}

// Duration is how long the run took; 0 while it has not finished.
func (r Run) Duration() time.Duration {
	if r.FinishedAt.IsZero() {
		return 0
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

// RunList is one page of runs and how many match the filter in all.
type RunList struct {
	Total int64
	Runs  []Run
}

// Runs lists the runs matching f, newest first: limit of them after skipping offset.
func (c *Catalog) Runs(ctx context.Context, f RunFilter, offset, limit int) (RunList, error) {
	total, runs, err := page(ctx, c, "runs", f.params(), offset, limit, func(rows driver.Rows) (Run, error) {
		var r Run
		var fin *time.Time
		var read, loaded, rejected, dups, bytes uint64
		if err := rows.Scan(&r.ID, &r.Entity, &r.Origin, &r.Source, &r.Preset, &r.StartedAt, &fin, &r.Status,
			&read, &loaded, &rejected, &dups, &bytes, &r.Error, &r.Warnings); err != nil {
			return r, err
		}
		if fin != nil {
			r.FinishedAt = *fin
		}
		r.Read, r.Loaded, r.Rejected, r.Duplicates, r.Bytes = int64(read), int64(loaded), int64(rejected), int64(dups), int64(bytes)
		return r, nil
	})
	return RunList{Total: total, Runs: runs}, err
}

// page runs the query name_count and then, unless the page is empty, name with limit and
// offset, scanning each row with scan.
func page[T any](ctx context.Context, c *Catalog, name string, params []any, offset, limit int, scan func(driver.Rows) (T, error)) (int64, []T, error) {
	var total uint64
	if err := c.st.Conn.QueryRow(ctx, query(name+"_count"), params...).Scan(&total); err != nil {
		return 0, nil, fmt.Errorf("count %s: %w", name, err)
	}
	if limit <= 0 || uint64(offset) >= total {
		return int64(total), nil, nil
	}
	args := append(params, clickhouse.Named("limit", uint32(limit)), clickhouse.Named("offset", uint64(offset)))
	rows, err := c.st.Conn.Query(ctx, query(name), args...)
	if err != nil {
		return int64(total), nil, fmt.Errorf("list %s: %w", name, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return int64(total), nil, fmt.Errorf("list %s: %w", name, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return int64(total), nil, fmt.Errorf("list %s: %w", name, err)
	}
	return int64(total), out, nil
}

// QuarantineFilter selects quarantined records; an empty field matches any value.
type QuarantineFilter struct {
	Run    string // run id
	Source string // record source
	Entity string
	Code   string // reason code, e.g. bad_date
}

func (f QuarantineFilter) params() []any {
	return []any{clickhouse.Named("run", f.Run), clickhouse.Named("source", f.Source), clickhouse.Named("entity", f.Entity),
		clickhouse.Named("code", f.Code)}
}

// Rejected is one quarantined record: where it was in its source (file and line, or record
// number for a stream), what was wrong and the record as received.
type Rejected struct {
	RunID, Entity, Source string
	File                  string
	Line                  int64
	Field                 string // "" when the whole record is bad
	Code, Reason          string
	Raw                   string
	At                    time.Time // when it was quarantined
}

// QuarantineList is one page of quarantined records and how many match the filter in all.
type QuarantineList struct {
	Total   int64
	Records []Rejected
}

// Quarantine lists the quarantined records matching f, newest runs first and in source order
// within a run: limit of them after skipping offset. Records are kept 180 days.
func (c *Catalog) Quarantine(ctx context.Context, f QuarantineFilter, offset, limit int) (QuarantineList, error) {
	total, recs, err := page(ctx, c, "quarantine", f.params(), offset, limit, func(rows driver.Rows) (Rejected, error) {
		var r Rejected
		var line uint64
		err := rows.Scan(&r.RunID, &r.Entity, &r.Source, &r.File, &line, &r.Field, &r.Code, &r.Reason, &r.Raw, &r.At)
		r.Line = int64(line)
		return r, err
	})
	return QuarantineList{Total: total, Records: recs}, err
}

// ReasonCount is how many quarantined records have one reason code, with one of their
// reasons as an example.
type ReasonCount struct {
	Code    string
	Records int64
	Example string
}

// QuarantineReasons counts the quarantined records matching f's run, source and entity by
// reason code (f.Code is ignored, so every code can be chosen), the most frequent first.
func (c *Catalog) QuarantineReasons(ctx context.Context, f QuarantineFilter) ([]ReasonCount, error) {
	rows, err := c.st.Conn.Query(ctx, query("quarantine_reasons"), f.params()[:3]...)
	if err != nil {
		return nil, fmt.Errorf("quarantine reasons: %w", err)
	}
	defer rows.Close()
	var out []ReasonCount
	for rows.Next() {
		var r ReasonCount
		var n uint64
		if err := rows.Scan(&r.Code, &n, &r.Example); err != nil {
			return nil, fmt.Errorf("quarantine reasons: %w", err)
		}
		r.Records = int64(n)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quarantine reasons: %w", err)
	}
	return out, nil
}

// QuarantineSize counts the quarantined records per entity (entities without any are absent).
func (c *Catalog) QuarantineSize(ctx context.Context) (map[string]int64, error) {
	rows, err := c.st.Conn.Query(ctx, query("quarantine_size"))
	if err != nil {
		return nil, fmt.Errorf("quarantine size: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var entity string
		var n uint64
		if err := rows.Scan(&entity, &n); err != nil {
			return nil, fmt.Errorf("quarantine size: %w", err)
		}
		out[entity] = int64(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quarantine size: %w", err)
	}
	return out, nil
}
