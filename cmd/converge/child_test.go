package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Helpers to run `converge serve` in child processes (TestConvergeProcess), so that a test can
// signal or kill it and open its data directory again, and to talk to it over HTTP.

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child is a converge command running in its own process.
type child struct {
	cmd    *exec.Cmd
	stderr *syncBuffer // the logs
	done   chan struct{}
	state  *os.ProcessState
}

// startChild runs converge with args and the environment plus env; the test's cleanup kills it
// if it still runs.
func startChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestConvergeProcess$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "CONVERGE_TEST_PROCESS=1"), env...)
	c := &child{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to a minute for the exit; it returns the exit code (-1 for a
// death by signal).
func (c *child) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("converge did not end within a minute of %v; log:\n%s", sig, c.stderr.String())
	}
	return c.state.ExitCode()
}

// serveEnv is the environment of a `converge serve` on dataDir at addr: its own engine
// endpoint port, a small engine.
func serveEnv(t *testing.T, dataDir, addr string, extra ...string) []string {
	return append([]string{"CONVERGE_DATA_DIR=" + dataDir, "CONVERGE_SERVER_ADDR=" + addr,
		"CONVERGE_ENGINE_HTTP_LISTEN=" + freeAddr(t), "CONVERGE_ENGINE_POOL=2", "CONVERGE_ENGINE_MAX_SERVER_MEMORY=2GiB"}, extra...)
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, c *child, base string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if code, _ := httpGet(base + "/readyz"); code == http.StatusOK {
			return
		}
		if c != nil && c.exited() {
			t.Fatalf("converge serve ended before it was ready; log:\n%s", c.stderr.String())
		}
		if time.Now().After(deadline) {
			log := ""
			if c != nil {
				log = c.stderr.String()
			}
			t.Fatalf("%s not ready within %s; log:\n%s", base, within, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpGet returns the status and body of GET url (status 0 on a transport error).
func httpGet(url string) (int, string) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenRe = regexp.MustCompile(`cvg_[0-9a-f]{12}_[A-Za-z0-9_-]{43}`)

// ingestToken creates a token of scope ingest in the store of the serve running on dataDir
// (through its endpoint).
func ingestToken(t *testing.T, dataDir string) string {
	t.Helper()
	out, code := converge(t, "", "--data-dir", dataDir, "token", "create", "--scope", "ingest", "--name", "test")
	tok := tokenRe.FindString(out)
	if code != 0 || tok == "" {
		t.Fatalf("token create: exit %d\n%s", code, out)
	}
	return tok
}

// postEvents posts NDJSON records; it returns the status (0 on a transport error) and the body.
func postEvents(cl *http.Client, base, token, entity string, records []string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/events/"+entity, strings.NewReader(strings.Join(records, "\n")))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// orderRecord is an order of the events tests: id, and a revenue derived from n.
func orderRecord(id string, n int) string {
	return fmt.Sprintf(`{"order_id":%q,"customer_id":"c%d","ordered_at":"2026-05-%02dT10:00:00Z","revenue":"%d.25","currency":"EUR"}`, id, n%97, 1+n%28, n%500)
}

// sqlRows runs a query on the data directory (the store must not be served) and returns the
// CSV rows after the header.
func sqlRows(t *testing.T, dataDir, query string) [][]string {
	t.Helper()
	out, code := convergeOut(t, "--data-dir", dataDir, "--log-level", "error", "sql", "--format", "csv", query)
	if code != 0 {
		t.Fatalf("sql %s: exit %d\n%s", query, code, out)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("sql %s: %v\n%s", query, err, out)
	}
	return rows[1:]
}

// convergeOut runs converge in a child process and returns its standard output only.
func convergeOut(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestConvergeProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "CONVERGE_TEST_PROCESS=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String() + errOut.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}
