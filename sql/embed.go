// Package sql holds converge's SQL as files: schema migrations
// (schema/NNNN_name.sql, applied in order, once each), built-in metric
// definitions (metrics/*.sql) and named queries (queries/*.sql), one
// statement per file, named after what uses it.
package sql

import (
	"embed"
	"io/fs"
)

//go:embed schema/*.sql metrics/*.sql
var files embed.FS

// Schema returns the migrations folder.
func Schema() fs.FS { return mustSub("schema") }

// Metrics returns the built-in metric definitions (see package metrics for
// the format).
func Metrics() fs.FS { return mustSub("metrics") }

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
