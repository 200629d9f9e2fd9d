// Package static holds converge's browser assets (CSS; ECharts and htmx, vendored with their
// licences; app.js), embedded into the binary. Nothing is ever loaded from a CDN.
//
// Assets are addressed by their path inside this package ("css/app.css"). URL returns the public
// URL with a content hash, so the server can let browsers cache it for a long time: a new build
// with changed content yields a new URL.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sync"
)

// Prefix is the URL path under which the server serves FS.
const Prefix = "/static/"

//go:embed css/*.css js/*.js js/LICENSE.*
var files embed.FS

// FS is the read-only tree of embedded assets, e.g. "css/app.css".
func FS() fs.FS { return files }

var hashes = sync.OnceValue(func() map[string]string {
	m := make(map[string]string)
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[p] = hex.EncodeToString(sum[:])[:16]
		return nil
	})
	return m
})

// Hash returns a short content hash (16 hex digits) of the asset at name and whether it exists.
func Hash(name string) (string, bool) {
	h, ok := hashes()[name]
	return h, ok
}

// URL returns the public URL of the asset at name, versioned by its content hash
// ("/static/css/app.css?v=0123456789abcdef"). An unknown name yields an unversioned URL.
func URL(name string) string {
	if h, ok := Hash(name); ok {
		return Prefix + name + "?v=" + h
	}
	return Prefix + name
}
