package sql

import "embed"

//go:embed rollups/*.sql
var rollupQueries embed.FS

// RollupQuery returns the named query of package metrics' rollups (rollups/NAME.sql).
func RollupQuery(name string) string {
	b, err := rollupQueries.ReadFile("rollups/" + name + ".sql")
	if err != nil {
		panic(err)
	}
	return string(b)
}
