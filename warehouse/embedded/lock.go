package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrDataDirInUse is returned by Open when another process has the data
// directory open (chDB allows one process per directory).
var ErrDataDirInUse = errors.New("data directory is in use by another process")

// checkLock tests the lock ClickHouse takes on DIR/status, so that a busy
// directory is reported as ErrDataDirInUse (with the holder's pid when the
// status file names it) instead of a failed chdb_connect.
func checkLock(dir string) error {
	path := filepath.Join(dir, "status")
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil // no status file: nobody has opened the directory yet
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "PID:") {
					holder = " (pid" + strings.TrimPrefix(line, "PID:") + ")"
				}
			}
		}
		return fmt.Errorf("%w: %s%s", ErrDataDirInUse, dir, holder)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
