package sql

import (
	"embed"
	"io/fs"
)

//go:embed access/*.sql
var accessFiles embed.FS

// Access returns the named queries of package access (users, sessions, audit log), one
// statement per file, named after what runs it.
func Access() fs.FS {
	sub, err := fs.Sub(accessFiles, "access")
	if err != nil {
		panic(err)
	}
	return sub
}
