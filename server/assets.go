package server

import (
	"bytes"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/static"
)

// staticAsset serves an embedded asset under /static/. A request carrying the asset's current
// content hash (?v=, as produced by static.URL) is cacheable for a year; otherwise browsers
// revalidate with the ETag. Directories and unknown files are 404.
func (s *Server) staticAsset(c *gin.Context) error {
	name := strings.TrimPrefix(path.Clean("/"+c.Param("path")), "/")
	hash, ok := static.Hash(name)
	if !ok {
		return errNotFound("There is no such file.")
	}
	b, err := fs.ReadFile(static.FS(), name)
	if err != nil {
		return err
	}
	etag := `"` + hash + `"`
	c.Header("ETag", etag)
	if c.Query("v") == hash {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "public, no-cache")
	}
	http.ServeContent(c.Writer, c.Request, name, time.Time{}, bytes.NewReader(b))
	return nil
}
