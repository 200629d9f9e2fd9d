package export

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
)

// WriteFile runs an export into path through a temporary file in the same
// folder, writes the manifest run returns as path.manifest.json, then
// renames the file into place. run returns a nil manifest when the file is
// not complete: nothing is written then. WriteFile returns the manifest's
// path ("" when nothing was written) and run's error.
func WriteFile(path string, run func(io.Writer) (any, error)) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	m, err := run(tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		return "", cerr
	}
	if m == nil {
		return "", err
	}
	if cerr := os.Chmod(tmp.Name(), 0o644); cerr != nil {
		return "", cerr
	}
	b, merr := json.MarshalIndent(m, "", "  ")
	if merr != nil {
		return "", merr
	}
	manifest := path + ".manifest.json"
	if werr := os.WriteFile(manifest, append(b, '\n'), 0o644); werr != nil {
		return "", werr
	}
	if rerr := os.Rename(tmp.Name(), path); rerr != nil {
		return "", rerr
	}
	return manifest, err
}
