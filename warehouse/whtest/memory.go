package whtest

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PeakGrowth runs f and returns how far the process's resident memory rose above what it
// was just before, at its peak, in bytes: the engine runs in this process, so its memory
// counts too. The peak is the kernel's (VmHWM, reset first through /proc/self/clear_refs);
// where that cannot be reset, VmRSS sampled every 5 ms while f runs.
func PeakGrowth(t testing.TB, f func()) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	before := status(t, "VmRSS")
	reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var peak int64
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	if !reset {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					v := status(t, "VmRSS")
					mu.Lock()
					peak = max(peak, v)
					mu.Unlock()
				}
			}
		}()
	}
	f()
	close(done)
	wg.Wait()
	if reset {
		peak = status(t, "VmHWM")
	}
	return max(peak-before, 0)
}

// status reads a field of /proc/self/status in bytes.
func status(t testing.TB, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("memory: %s: %v", field, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("memory: no %s in /proc/self/status", field)
	return 0
}
