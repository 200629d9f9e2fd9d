package sql

import "embed"

//go:embed console/*.sql
var consoleQueries embed.FS

// ConsoleQuery returns the named query of the SQL console's history (console/NAME.sql), run
// by package export.
func ConsoleQuery(name string) string {
	b, err := consoleQueries.ReadFile("console/" + name + ".sql")
	if err != nil {
		panic(err)
	}
	return string(b)
}
