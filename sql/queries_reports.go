package sql

import "embed"

//go:embed queries/report_*.sql
var reportQueries embed.FS

// ReportQuery returns the named query of package reports
// (queries/report_NAME.sql).
func ReportQuery(name string) string {
	b, err := reportQueries.ReadFile("queries/report_" + name + ".sql")
	if err != nil {
		panic(err)
	}
	return string(b)
}
