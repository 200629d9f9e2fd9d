package sql

import "embed"

//go:embed queries/export_*.sql
var exportQueries embed.FS

// ExportQuery returns the named query of package export
// (queries/export_NAME.sql).
func ExportQuery(name string) string {
	b, err := exportQueries.ReadFile("queries/export_" + name + ".sql")
	if err != nil {
		panic(err)
	}
	return string(b)
}
