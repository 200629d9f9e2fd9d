package ingest

import (
	"fmt"
	"strings"
)

// What becomes of source columns (or NDJSON and record fields) that no field
// of the mapping reads: they are never dropped without a word.
const (
	// UnknownWarn loads the records and records the columns' names as a
	// warning of the run ("columns not in the mapping: a, b (ignored)").
	UnknownWarn = "warn"
	// UnknownReject fails a file whose header has such a column before any
	// record is read, and rejects a record (NDJSON, pushed from Go) that has
	// such a field with a value.
	UnknownReject = "reject"
)

// maxUnknownNames bounds the names a warning lists.
const maxUnknownNames = 50

// usedColumns are the source columns the run's converters read.
func (l *Loader) usedColumns() []bool {
	used := make([]bool, len(l.cols.names))
	mark := func(i int) {
		if i >= 0 && i < len(used) {
			used[i] = true
		}
	}
	for _, c := range []*converter{l.conv, l.lineCnv} {
		if c == nil {
			continue
		}
		for _, sp := range c.specs {
			mark(sp.col)
			mark(sp.fallback)
			for _, p := range sp.tmpl {
				mark(p.col)
			}
		}
	}
	return used
}

// unknownColumns names the source columns no field reads, in source order.
func (l *Loader) unknownColumns() []string {
	if l.cols == nil {
		return nil
	}
	var out []string
	for i, u := range l.usedColumns() {
		if !u {
			out = append(out, l.cols.names[i])
		}
	}
	return out
}

// unknownIn names the fields of rec, with a value, that no field reads.
func (l *Loader) unknownIn(rec []string) []string {
	var used []bool
	var out []string
	for i, v := range rec {
		if v == "" {
			continue
		}
		if used == nil {
			used = l.usedColumns()
		}
		if i >= len(used) || !used[i] {
			out = append(out, l.colName(i))
		}
	}
	return out
}

// readsWhat names what decides which columns are known, for messages.
func (l *Loader) readsWhat() string {
	if len(l.m.Fields) > 0 {
		return "the mapping"
	}
	return l.ent.Name
}

// unknownMessage is the warning or error listing names.
func (l *Loader) unknownMessage(names []string, what string) string {
	noun := "fields"
	if l.cols != nil && l.cols.fixed {
		noun = "columns"
	}
	list := names
	more := ""
	if len(list) > maxUnknownNames {
		list, more = list[:maxUnknownNames], fmt.Sprintf(" and %d more", len(names)-maxUnknownNames)
	}
	return fmt.Sprintf("%s not in %s: %s%s (%s)", noun, l.readsWhat(), strings.Join(list, ", "), more, what)
}

// checkHeader applies Unknown to a file's header once the mapping is compiled.
func (l *Loader) checkHeader() error {
	if l.unknown != UnknownReject || l.cols == nil || !l.cols.fixed {
		return nil
	}
	if names := l.unknownColumns(); len(names) > 0 {
		return fmt.Errorf("%s", l.unknownMessage(names, "unknown: reject; map them, or load with unknown: warn to ignore them"))
	}
	return nil
}

// warnUnknown records the columns no field read as a warning of the run.
func (l *Loader) warnUnknown() {
	if l.unknown == UnknownReject {
		return // refused (file) or rejected per record
	}
	if names := l.unknownColumns(); len(names) > 0 {
		l.warn(l.unknownMessage(names, "ignored"))
	}
}
