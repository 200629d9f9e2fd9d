package embedded

import (
	"os"
	"path/filepath"
)

// DefaultLibPath is where scripts/install-chdb.sh installs the library:
// $CONVERGE_CACHE_DIR, else $XDG_CACHE_HOME/converge, else ~/.cache/converge,
// then chdb/<Version>/libchdb.so. The environment variable
// CONVERGE_ENGINE_LIB, when set, wins.
func DefaultLibPath() string {
	if p := os.Getenv("CONVERGE_ENGINE_LIB"); p != "" {
		return p
	}
	base := os.Getenv("CONVERGE_CACHE_DIR")
	if base == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			base = filepath.Join(x, "converge")
		} else if h, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(h, ".cache", "converge")
		}
	}
	return filepath.Join(base, "chdb", Version, "libchdb.so")
}
