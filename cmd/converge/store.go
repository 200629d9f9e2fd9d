package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/embedded"
)

// endpointFile is where a running `converge serve` publishes its loopback
// ClickHouse endpoint, inside the data directory (mode 0600).
const endpointFile = "converge-endpoint.json"

// costsFile, in the data directory, keeps how long each metric statement took
// (metrics.Lanes.Save), so that a later process knows the heavy ones from its first page.
const costsFile = "statement-costs.json"

// lanes are the metric statements' lanes for a store in the data directory, knowing the costs
// an earlier process saved there; new ones for a remote store or when the file is unreadable
// (logged).
func (a *app) lanes() *metrics.Lanes {
	if a.cfg.ClickHouse.Addr != "" || a.cfg.DataDir == "" {
		return metrics.NewLanes()
	}
	l, err := metrics.LoadLanes(filepath.Join(a.cfg.DataDir, costsFile))
	if err != nil {
		a.log.Warn("statement costs not loaded: heavy statements are learned again as they run", "error", err)
	}
	return l
}

// saveLanes writes l's costs to the data directory (nothing for a remote store).
func (a *app) saveLanes(l *metrics.Lanes) {
	if a.cfg.ClickHouse.Addr != "" || a.cfg.DataDir == "" {
		return
	}
	if err := l.Save(filepath.Join(a.cfg.DataDir, costsFile)); err != nil {
		a.log.Warn("statement costs not saved", "error", err)
	}
}

// endpoint is what the endpoint file publishes: the full-access user (other converge commands)
// and the analyst user (read-only, kept out of the app database; for analysts' tools, and the
// console of other converge commands).
type endpoint struct {
	URL             string `json:"url"`
	User            string `json:"user"`
	Password        string `json:"password"`
	AnalystUser     string `json:"analyst_user,omitempty"`
	AnalystPassword string `json:"analyst_password,omitempty"`
	PID             int    `json:"pid"`
}

// openStore opens the configured store. When the embedded data directory is
// held by a running `converge serve`, the store is reached through that
// server's loopback ClickHouse endpoint instead.
//
// Only serve and migrate create a new data directory; other commands refuse
// a directory that does not exist, so a mistyped path is not a silent empty store.
func (a *app) openStore(ctx context.Context, create bool) (*warehouse.Store, error) {
	wc := a.cfg.warehouseConfig()
	if wc.Addr == "" {
		if a.cfg.EngineLib == "" {
			wc.EngineLib = embedded.DefaultLibPath()
		}
		if _, err := os.Stat(wc.DataDir); !create && errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("data_dir: no store at %s (start one with `converge serve`, or set --data-dir / CONVERGE_DATA_DIR)", wc.DataDir)
		}
	}
	s, err := warehouse.Open(ctx, wc, a.log)
	if err == nil || !errors.Is(err, embedded.ErrDataDirInUse) {
		return s, err
	}
	ep, rerr := readEndpoint(a.cfg.DataDir)
	if rerr != nil {
		return nil, fmt.Errorf("%w; it publishes no ClickHouse endpoint (%v): stop that process, or start it with engine.http_listen set, or point this command at a server with --clickhouse-addr", err, rerr)
	}
	rc, rerr := warehouse.RemoteConfig(wc, ep.URL, ep.Password, ep.AnalystUser, ep.AnalystPassword)
	if rerr != nil {
		return nil, rerr
	}
	a.log.Debug("data directory in use; using the running server's endpoint", "url", ep.URL, "pid", ep.PID)
	s, err = warehouse.Open(ctx, rc, a.log)
	if err != nil {
		return nil, fmt.Errorf("data directory %s is in use by converge pid %d, and its endpoint %s does not answer: %w", a.cfg.DataDir, ep.PID, ep.URL, err)
	}
	return s, nil
}

func readEndpoint(dataDir string) (*endpoint, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, endpointFile))
	if err != nil {
		return nil, err
	}
	var ep endpoint
	if err := json.Unmarshal(b, &ep); err != nil {
		return nil, fmt.Errorf("%s: %w", endpointFile, err)
	}
	return &ep, nil
}

func writeEndpoint(dataDir string, ep endpoint) error {
	b, err := json.MarshalIndent(ep, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, endpointFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
