package views

// ConsoleView is the SQL console page: the editor, the result of the query just run (or why it
// was not run), and the user's history. Every value is formatted by the server.
type ConsoleView struct {
	Page Page
	// Query is the editor's text: the query just run, or one opened from the history.
	Query string
	// Limits states the console's limits for people.
	Limits ConsoleLimits
	// Refused is why the console did not run the query (its read-only rules); Error why the
	// engine did not finish it (a mistake in the query, a limit); Busy why it did not start
	// now (too many console queries running: the person's own, or everyone's).
	Refused, Error, Busy string
	// TooLarge is why the result is not shown: larger than the page holds.
	TooLarge     string
	Result       *ConsoleResult
	History      []HistoryRow
	HistoryError string
	// MaxHistory is how many queries the history lists.
	MaxHistory int
	// NotConfigured: the server has no store to run queries on.
	NotConfigured bool
}

// ConsoleLimits are the console's limits, formatted: rows and bytes shown, time, memory,
// bytes read, rows a download holds ("no limit" when none), the largest block a download
// streams, and how many queries one person and everyone may run at once.
type ConsoleLimits struct {
	Rows, Bytes, Timeout, Memory, Read, DownloadRows, Block string
	PerUser, Total                                          string
}

// ConsoleResult is a query's result: columns with their ClickHouse types, the rows as text
// (NULL marked), and how many rows it had and how long it took.
type ConsoleResult struct {
	Columns []ConsoleColumn
	Rows    [][]ConsoleCell
	// Summary is "3 rows in 12 ms" or "first 10,000 rows of more (row limit 10,000) in 1.2 s".
	Summary string
	Limited bool
	// Totals is the query's WITH TOTALS row (nil without one); TotalsError why it could not
	// be read.
	Totals      []ConsoleCell
	TotalsError string
}

// ConsoleColumn is a result column: its name, its type, whether it holds numbers (aligned
// right) and, for instants, the zone they are shown in.
type ConsoleColumn struct {
	Name, Type, Zone string
	Num              bool
}

// ConsoleCell is one value as text; Null marks SQL NULL.
type ConsoleCell struct {
	Text string
	Null bool
}

// HistoryRow is one query of the user's history: when, what, how it went; Query is the full
// text (for Run again), OpenURL opens it in the editor without running it.
type HistoryRow struct {
	ID, At, Query, Kind   string
	Duration, Rows, Error string
	OK, Limited           bool
	OpenURL               string
}
