package views

import "fmt"

// Cell is one cell of a LinkTable: text, optionally a link and a muted second line.
type Cell struct {
	Text, Href, Sub string
}

// LinkTable is a data table whose cells may link (to a customer, …). Num marks the columns
// aligned as numbers; the first column is the row header.
type LinkTable struct {
	Caption string
	Head    []string
	Num     []bool
	Rows    [][]Cell
	// Download offers the table as a file (empty: no links).
	Download Download
}

// Fact is one labelled value of a definition list.
type Fact struct {
	Label, Value, Href string
}

// ListSection is one widget of the customer pages: a heading, what it shows, and a table (or
// facts), with "showing N of M" so a list is never cut silently. Error replaces the content
// when it could not be loaded.
type ListSection struct {
	ID, Title string
	// Definition says what is shown and how it is computed.
	Definition string
	// Note is a line of context (a snapshot date, a total).
	Note    string
	Facts   []Fact
	Table   *LinkTable
	Chart   *Chart
	Showing string
	// Empty is said when there are no rows.
	Empty string
	Error string
	// Wide sections span the whole row of the grid.
	Wide bool
}

// CustomerSearchView is the search box and, after a search, its page of results.
type CustomerSearchView struct {
	Action string
	Query  string
	// Hidden carries the page's filter state through a search.
	Hidden []Option
	// MaxLength is the longest query accepted.
	MaxLength int
	// Results is nil before a search.
	Results *ListSection
	// PrevURL and NextURL page through the results; empty at the ends.
	PrevURL, NextURL string
	Page, Pages      int
}

// CustomersView is the customers page.
type CustomersView struct {
	Page    Page
	Filters FilterBar
	Search  CustomerSearchView
	// Sections: best customers by predicted CLV, RFM 555, at risk, RFM segments.
	Sections      []ListSection
	NotConfigured bool
}

// Customer360View is one customer's page.
type Customer360View struct {
	Page    Page
	ID      string
	Heading string
	// BackURL returns to the customers page (and the search) the visitor came from.
	BackURL  string
	Profile  ListSection
	Value    ListSection
	Sections []ListSection
}

// Showing is the "showing N of M" line of a list of total things of which n are shown, in
// order (e.g. ", newest first"): "Showing 50 of 1,234 orders, newest first."
func Showing(n, total int, one, many, order string) string {
	switch {
	case total == 0:
		return ""
	case total == 1:
		return "Showing the only " + one + "."
	case n >= total:
		return fmt.Sprintf("Showing all %s %s%s.", FormatNumber(float64(total), 0), many, order)
	}
	return fmt.Sprintf("Showing %s of %s %s%s.", FormatNumber(float64(n), 0), FormatNumber(float64(total), 0), many, order)
}

func itoa(n int) string { return fmt.Sprint(n) }

// isNum tells whether column i of a table is numeric.
func isNum(num []bool, i int) bool { return i < len(num) && num[i] }
