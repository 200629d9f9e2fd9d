package sql

import (
	"embed"
	"io/fs"
)

//go:embed queries/customer_*.sql
var customerQueries embed.FS

// CustomerQueries returns the named queries of the customer pages (queries/customer_*.sql,
// see package metrics, Customers), by file name.
func CustomerQueries() fs.FS {
	sub, err := fs.Sub(customerQueries, "queries")
	if err != nil {
		panic(err)
	}
	return sub
}
