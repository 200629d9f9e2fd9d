package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of size bytes at a new directory and unmounts it when the test
// ends. It skips the test only when mounting is not permitted (not root, no CAP_SYS_ADMIN);
// CI runs as root, so there it runs.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			t.Skipf("cannot mount a small tmpfs for the full-disk test (%v): run as root", err)
		}
		t.Fatalf("mount tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill leaves about free bytes on the filesystem of dir, in a file it returns.
func fill(t *testing.T, dir string, free int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, avail-free); err != nil {
		t.Fatalf("fallocate %d bytes: %v", avail-free, err)
	}
	return path
}

// A full disk in the data directory: the events API refuses with a clear error (507) and
// acknowledges nothing it did not store; a refused batch is stored entirely or not at all;
// once space is freed the same server takes the refused batches again, and every record is
// stored exactly once.
func TestEventsFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs converge serve in a child process")
	}
	disk := smallDisk(t, 48<<20)
	dir := filepath.Join(disk, "data")
	addr := freeAddr(t)
	base := "http://" + addr
	srv := startChild(t, serveEnv(t, dir, addr), "serve")
	waitReady(t, srv, base, time.Minute)
	token := ingestToken(t, dir)
	cl := &http.Client{Timeout: time.Minute}
	const size = 500

	send := func(b int) (int, string) {
		recs, _ := batch("d", 0, b, size)
		return postEvents(cl, base, token, "orders", recs)
	}
	if code, body := send(0); code != http.StatusOK {
		t.Fatalf("first batch: %d %s", code, body)
	}
	filler := fill(t, disk, 64<<10)

	acked, refused := []int{0}, []int(nil)
	for b := 1; b <= 12 && len(refused) < 3; b++ {
		code, body := send(b)
		switch {
		case code == http.StatusOK:
			acked = append(acked, b)
		case code == http.StatusInsufficientStorage:
			if !strings.Contains(body, "disk is full") || !strings.Contains(body, "send the records again") {
				t.Errorf("refusal of a full disk: %s", body)
			}
			if len(refused) == 0 {
				t.Logf("batch %d refused: %d %s", b, code, body)
			}
			refused = append(refused, b)
		default:
			t.Fatalf("batch %d on a full disk: %d %s, want 200 or 507", b, code, body)
		}
	}
	if len(refused) == 0 {
		t.Fatalf("no batch refused on a full disk; log:\n%s", srv.stderr.String())
	}
	if code, body := httpGet(base + "/healthz"); code != http.StatusOK {
		t.Errorf("healthz on a full disk: %d %s", code, body)
	}

	// What is stored: every acknowledged batch once; a refused batch entirely or not at all.
	stored := map[string]int{}
	// (converge sql reaches the store through the running server's endpoint.)
	for _, r := range sqlRows(t, dir, "SELECT order_id, toString(count()) FROM orders FINAL GROUP BY order_id") {
		stored[r[0]]++
	}
	for _, b := range acked {
		_, ids := batch("d", 0, b, size)
		for _, id := range ids {
			if stored[id] != 1 {
				t.Fatalf("acknowledged order %s not stored", id)
			}
		}
	}
	for _, b := range refused {
		_, ids := batch("d", 0, b, size)
		n := 0
		for _, id := range ids {
			n += stored[id]
		}
		if n != 0 && n != size {
			t.Errorf("refused batch %d is half-written: %d of %d orders stored", b, n, size)
		}
	}

	// Space freed: the same process takes the refused batches.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, b := range refused {
		if code, body := send(b); code != http.StatusOK {
			t.Fatalf("resending batch %d after freeing space: %d %s", b, code, body)
		}
	}
	if code := srv.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, srv.stderr.String())
	}
	final := storedOrders(t, dir)
	want := (len(acked) + len(refused)) * size
	if len(final) != want {
		t.Errorf("%d orders stored, want %d", len(final), want)
	}
	for id, n := range final {
		if n != 1 {
			t.Errorf("order %s stored %d times", id, n)
		}
	}
	t.Logf("full disk: %d batches acknowledged, %d refused with 507 and stored after space was freed", len(acked), len(refused))
}
