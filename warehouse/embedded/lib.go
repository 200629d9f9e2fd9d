package embedded

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Version is the chDB build this package is written and tested against
// (npm @chdb/lib-linux-x64-gnu). Other builds may load but are not supported.
const Version = "26.5.3"

// lib holds the resolved C entry points of libchdb.so. Signatures follow chdb.h
// of chDB 26.x: a chdb_connection is an opaque pointer; chdb_connect returns a
// pointer to one.
type lib struct {
	handle uintptr
	path   string

	connect        func(argc int32, argv **byte) unsafe.Pointer // chdb_connection*
	closeConn      func(conn unsafe.Pointer)                    // chdb_close_conn(chdb_connection*)
	queryN         func(conn uintptr, q *byte, qlen uintptr, f *byte, flen uintptr) uintptr
	queryParamsN   func(conn uintptr, q *byte, qlen uintptr, f *byte, flen uintptr, names **byte, nameLens *uintptr, values **byte, valueLens *uintptr, n uintptr) uintptr
	streamParamsN  func(conn uintptr, q *byte, qlen uintptr, f *byte, flen uintptr, names **byte, nameLens *uintptr, values **byte, valueLens *uintptr, n uintptr) uintptr
	streamFetch    func(conn uintptr, stream uintptr) uintptr
	streamCancel   func(conn uintptr, stream uintptr)
	resultBuffer   func(r uintptr) unsafe.Pointer
	resultLength   func(r uintptr) uintptr
	resultError    func(r uintptr) unsafe.Pointer
	resultElapsed  func(r uintptr) float64
	resultRowsRead func(r uintptr) uint64
	destroyResult  func(r uintptr)
}

var (
	loadMu  sync.Mutex
	loaded  *lib
	loadErr error
)

// fatalSignals are the signals chDB takes over at load and at each connect.
// Go needs its own handlers for them so that nil dereferences and other
// runtime faults stay recoverable panics instead of killing the process
// (engine-notes.md, defect 2).
var fatalSignals = []syscall.Signal{
	syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL,
	syscall.SIGABRT, syscall.SIGTRAP,
	// chDB also installs handlers for these; Go's must stay so that
	// signal.Notify (graceful shutdown) keeps working.
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE,
	syscall.SIGUSR1, syscall.SIGUSR2,
}

// kernelSigaction is struct sigaction as the Linux x86-64 rt_sigaction syscall sees it.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

type savedSignals map[syscall.Signal]kernelSigaction

func saveSignals() (savedSignals, error) {
	s := make(savedSignals, len(fatalSignals))
	for _, sig := range fatalSignals {
		var old kernelSigaction
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); errno != 0 {
			return nil, fmt.Errorf("read handler of signal %d: %w", sig, errno)
		}
		s[sig] = old
	}
	return s, nil
}

func (s savedSignals) restore() error {
	for sig, act := range s {
		a := act
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&a)), 0, 8, 0, 0); errno != 0 {
			return fmt.Errorf("restore handler of signal %d: %w", sig, errno)
		}
	}
	return nil
}

// loadLib loads libchdb.so once per process. Every symbol is resolved up front
// so a library of the wrong build fails here with the symbol's name rather than
// at the first query.
func loadLib(path string, restoreSignals bool) (*lib, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if loaded != nil || loadErr != nil {
		if loaded != nil && loaded.path != path {
			return nil, fmt.Errorf("chdb: %s already loaded in this process; cannot also load %s", loaded.path, path)
		}
		return loaded, loadErr
	}
	loaded, loadErr = doLoad(path, restoreSignals)
	if loadErr != nil {
		// A failed load can be retried with a corrected path.
		l := loadErr
		loaded, loadErr = nil, nil
		return nil, l
	}
	return loaded, nil
}

// ErrLibraryMissing is returned when the chDB library file does not exist.
var ErrLibraryMissing = errors.New("chDB library not found")

func doLoad(path string, restoreSignals bool) (*lib, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no path given (set engine.lib or run scripts/install-chdb.sh)", ErrLibraryMissing)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w at %s (run `make deps` or scripts/install-chdb.sh, or set engine.lib / CONVERGE_ENGINE_LIB): %v", ErrLibraryMissing, path, err)
	}
	saved, err := saveSignals()
	if err != nil {
		return nil, err
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if restoreSignals {
		if rerr := saved.restore(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("chdb: load %s: %w", path, err)
	}
	l := &lib{handle: h, path: path}
	syms := []struct {
		name string
		fn   any
	}{
		{"chdb_connect", &l.connect},
		{"chdb_close_conn", &l.closeConn},
		{"chdb_query_n", &l.queryN},
		{"chdb_query_with_params_n", &l.queryParamsN},
		{"chdb_stream_query_with_params_n", &l.streamParamsN},
		{"chdb_stream_fetch_result", &l.streamFetch},
		{"chdb_stream_cancel_query", &l.streamCancel},
		{"chdb_result_buffer", &l.resultBuffer},
		{"chdb_result_length", &l.resultLength},
		{"chdb_result_error", &l.resultError},
		{"chdb_result_elapsed", &l.resultElapsed},
		{"chdb_result_rows_read", &l.resultRowsRead},
		{"chdb_destroy_query_result", &l.destroyResult},
	}
	for _, s := range syms {
		addr, err := purego.Dlsym(h, s.name)
		if err != nil {
			return nil, fmt.Errorf("chdb: %s does not export %s (this package needs chDB %s): %w", path, s.name, Version, err)
		}
		purego.RegisterFunc(s.fn, addr)
	}
	return l, nil
}

// cstr returns a NUL-terminated copy of s and a pointer to its first byte.
func cstr(s string) (*byte, []byte) {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return &b[0], b
}

// goBytes copies n bytes from C memory at p.
func goBytes(p unsafe.Pointer, n uintptr) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(p), n)...)
}

// goString copies a NUL-terminated C string.
func goString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}
