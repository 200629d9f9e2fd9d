package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sync/singleflight"

	convsql "github.com/converge-dev/converge/sql"
	"github.com/converge-dev/converge/warehouse"
)

// Options configure a Registry.
type Options struct {
	Store    *warehouse.Store // needed to check and query; nil for list/show only
	Dir      string           // the user's metrics folder; "" for built-ins only
	Builtins fs.FS            // default sql.Metrics()
	Log      *slog.Logger
	Defaults Defaults
	CacheTTL time.Duration // upper bound on a cached answer's age; default 10m; <0 disables the cache
	// OnQuery, when set, is told about every Query of a defined metric (monitoring: see
	// QueryStats). It is called synchronously and concurrently, so it must be fast and safe
	// for concurrent use.
	OnQuery func(QueryStats)
	// Finish, when positive, lets a computation outlive the caller that started it: concurrent
	// callers of the same query (same definitions, parameters and data) share one computation,
	// and a caller that gives up (a dashboard tile over its time budget) leaves it running for
	// up to Finish so that its answer is cached for the next caller. 0 (the default): a query
	// stops with its caller. Ignored while the cache is disabled or the context carries a trace.
	Finish time.Duration
	// Lifetime, when set, ends the computations Finish keeps going when it ends (serve's
	// lifetime: a shutdown does not wait for them).
	Lifetime context.Context
	// Lanes admit the registry's statements to the store (heavy ones by the cores they use); registries
	// on one store should share them. Default: the registry's own.
	Lanes *Lanes
}

// Registry holds the metric definitions: the built-ins and the user's
// folder. It is safe for concurrent use. A user file that becomes invalid
// keeps its last good version serving; its error is reported by Errors.
type Registry struct {
	opts Options
	log  *slog.Logger

	mu      sync.RWMutex
	builtin map[string]*Definition // file → definition
	user    map[string]*Definition // path → last good definition
	userErr map[string]error       // path → why its current content is refused
	defs    map[string]*Definition // name → definition in force
	checked map[string]*shape      // version → what the store said about it
	loaded  bool                   // the user folder was read once

	cache  *cache
	flight singleflight.Group // cache key → the computation in progress (Options.Finish)
	lanes  *Lanes             // admission of statements: heavy ones by the cores they use, retries alone
	// rollups are the store's rollups as this registry knows them, and their upkeep.
	rollups *rollups
	// computed counts answers computed (not from the cache), for tests.
	computed atomic.Int64
}

// New loads the built-ins (an invalid built-in is an error) and the user
// folder (invalid user files are reported by Errors).
func New(ctx context.Context, o Options) (*Registry, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Builtins == nil {
		o.Builtins = convsql.Metrics()
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 10 * time.Minute
	}
	r := &Registry{opts: o, log: o.Log, builtin: map[string]*Definition{}, user: map[string]*Definition{},
		userErr: map[string]error{}, checked: map[string]*shape{}, cache: newCache(o.CacheTTL), lanes: o.Lanes, rollups: newRollups()}
	if r.lanes == nil {
		r.lanes = NewLanes()
	}
	names, err := fs.Glob(o.Builtins, "*.sql")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		b, err := fs.ReadFile(o.Builtins, n)
		if err != nil {
			return nil, err
		}
		d, err := Parse("builtin:"+n, b)
		if err != nil {
			return nil, err
		}
		d.Builtin = true
		r.builtin[n] = d
	}
	if err := r.resolve(); err != nil {
		return nil, err
	}
	if o.Dir != "" {
		if err := r.Reload(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// resolve rebuilds the name index from built-ins and user files and
// validates the graph of derived metrics. It returns the first error; on
// error the index is left as it was.
func (r *Registry) resolve() error {
	defs := map[string]*Definition{}
	add := func(d *Definition) error {
		if prev, ok := defs[d.Name]; ok {
			return &Error{File: d.File, Line: d.Line("name"), Reason: fmt.Sprintf("metric %q is already defined in %s", d.Name, prev.File)}
		}
		defs[d.Name] = d
		return nil
	}
	for _, k := range sortedKeys(r.builtin) {
		if err := add(r.builtin[k]); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(r.user) {
		if err := add(r.user[k]); err != nil {
			return err
		}
	}
	if err := validateGraph(defs); err != nil {
		return err
	}
	r.defs = defs
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// validateGraph checks that derived metrics read existing metrics, without
// cycles, and only declare dimensions every input has.
func validateGraph(defs map[string]*Definition) error {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var visit func(d *Definition, path []string) error
	visit = func(d *Definition, path []string) error {
		switch color[d.Name] {
		case grey:
			return &Error{File: d.File, Line: d.Line("formula"), Reason: "cycle between derived metrics: " + strings.Join(append(path, d.Name), " → ")}
		case black:
			return nil
		}
		color[d.Name] = grey
		for _, in := range d.Inputs() {
			dep, ok := defs[in]
			if !ok {
				return &Error{File: d.File, Line: inputLine(d, in), Reason: fmt.Sprintf("%s reads unknown metric %q", inputWord(d), in)}
			}
			if dep.Kind == Custom {
				return &Error{File: d.File, Line: inputLine(d, in), Reason: fmt.Sprintf("%s reads %q, a custom metric (only simple, derived and score metrics can be combined)", inputWord(d), in)}
			}
			for _, dim := range d.Dimensions {
				if _, ok := dep.Dimension(dim.Name); !ok {
					return &Error{File: d.File, Line: dim.Line, Reason: fmt.Sprintf("unknown dimension %q: input %s does not have it (%s)", dim.Name, in, dimNames(dep))}
				}
			}
			if err := visit(dep, append(path, d.Name)); err != nil {
				return err
			}
		}
		color[d.Name] = black
		return nil
	}
	for _, k := range sortedKeys(defs) {
		if err := visit(defs[k], nil); err != nil {
			return err
		}
	}
	return nil
}

// inputLine is the line naming input in (or the first input) of d.
func inputLine(d *Definition, in ...string) int {
	for _, c := range d.Components {
		if len(in) == 0 || c.Metric == in[0] {
			return c.Line
		}
	}
	return d.Line("formula")
}

func inputWord(d *Definition) string {
	if d.Kind == Score {
		return "component"
	}
	return "formula"
}

// Reload rereads the user folder: new and changed valid files take effect,
// invalid ones keep their last good version (see Errors), removed files go.
func (r *Registry) Reload(ctx context.Context) error {
	dir := r.opts.Dir
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("metrics folder: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return err
	}
	// Parse and check the changed files outside the lock (checks query the store).
	type cand struct {
		def *Definition
		err error
	}
	cands := map[string]cand{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		r.mu.RLock()
		old, hadErr := r.user[p], r.userErr[p] != nil
		r.mu.RUnlock()
		if err == nil && old != nil && !hadErr && old.Version == versionOf(b) {
			cands[p] = cand{def: old}
			continue
		}
		var d *Definition
		if err == nil {
			d, err = Parse(p, b)
		}
		if err == nil && r.opts.Store != nil {
			_, err = r.checkStore(ctx, d, nil)
		}
		cands[p] = cand{def: d, err: err}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.user
	next := map[string]*Definition{}
	errs := map[string]error{}
	refuse := func(p string, err error) {
		if old := prev[p]; old != nil {
			next[p] = old
			if _, stillThere := cands[p]; stillThere {
				err = fmt.Errorf("%w (still serving the last good version %s)", err, old.Version)
			} else {
				err = fmt.Errorf("%w (removed, but still serving the last good version %s)", err, old.Version)
			}
		} else {
			delete(next, p)
		}
		errs[p] = err
	}
	for p, c := range cands {
		if c.err != nil {
			refuse(p, c.err)
		} else {
			next[p] = c.def
		}
	}
	// Resolve the graph; a file at fault goes back to its last good version
	// (or out), until the whole set is consistent.
	for range len(cands) + len(prev) + 1 {
		r.user = next
		err := r.resolve()
		if err == nil {
			break
		}
		var de *Error
		if !errors.As(err, &de) || next[de.File] == nil {
			r.user = prev
			_ = r.resolve()
			return err
		}
		if errs[de.File] != nil && next[de.File] == prev[de.File] {
			// Its last good version no longer fits either (an input went).
			delete(next, de.File)
			errs[de.File] = err
			continue
		}
		refuse(de.File, err)
	}
	for p, err := range errs {
		if r.userErr[p] == nil || r.userErr[p].Error() != err.Error() {
			r.log.Warn("metric definition refused", "err", err)
		}
	}
	for p, d := range next {
		if errs[p] == nil && (prev[p] == nil || prev[p].Version != d.Version) {
			level := slog.LevelInfo
			if !r.loaded {
				level = slog.LevelDebug // the first load is not news
			}
			r.log.Log(ctx, level, "metric definition loaded", "file", p, "metric", d.Name, "version", d.Version)
		}
	}
	r.userErr = errs
	r.loaded = true
	return nil
}

func versionOf(b []byte) string {
	d, err := Parse("", b)
	if err != nil {
		return ""
	}
	return d.Version
}

// Watch reloads the user folder when a file in it changes, until ctx ends.
func (r *Registry) Watch(ctx context.Context) error {
	if r.opts.Dir == "" {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(r.opts.Dir); err != nil {
		return fmt.Errorf("watch %s: %w", r.opts.Dir, err)
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if strings.HasSuffix(ev.Name, ".sql") {
				timer = time.After(100 * time.Millisecond) // editors write in several steps
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("watching metrics folder", "err", err)
		case <-timer:
			timer = nil
			if err := r.Reload(ctx); err != nil {
				r.log.Warn("reloading metrics folder", "err", err)
			}
		}
	}
}

// List returns the definitions in force, by name.
func (r *Registry) List() []*Definition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Definition, 0, len(r.defs))
	for _, k := range sortedKeys(r.defs) {
		out = append(out, r.defs[k])
	}
	return out
}

// Get returns the definition called name.
func (r *Registry) Get(name string) (*Definition, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.defs[name]
	return d, ok
}

// Roles are the roles that may see the metric called name: its own "roles" header narrowed by
// the roles of the metrics it combines, so a derived or score metric shows no more than its
// inputs do. Nil means every role; admin, which sees every metric, is always among a non-nil
// answer.
func (r *Registry) Roles(name string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.roles(name)
}

// roles is Roles with r.mu held (the graph has no cycles: resolve checked it).
func (r *Registry) roles(name string) []string {
	d, ok := r.defs[name]
	if !ok {
		return nil
	}
	out := d.Roles
	for _, in := range d.Inputs() {
		ir := r.roles(in)
		switch {
		case ir == nil:
		case out == nil:
			out = ir
		default:
			both := []string{} // not nil: nil means every role
			for _, x := range out {
				if slices.Contains(ir, x) {
					both = append(both, x)
				}
			}
			out = both
		}
	}
	if out != nil && !slices.Contains(out, "admin") {
		out = append(slices.Clone(out), "admin")
	}
	return out
}

// Errors are the user files currently refused, each with file, line and
// reason.
func (r *Registry) Errors() []error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []error
	for _, k := range sortedKeys(r.userErr) {
		out = append(out, r.userErr[k])
	}
	return out
}

// ParseParams parses request parameters for metric name (see ParseParams).
func (r *Registry) ParseParams(name string, v map[string][]string) (Params, error) {
	d, ok := r.Get(name)
	if !ok {
		return Params{}, &ParamError{Param: "metric", Reason: fmt.Sprintf("unknown metric %q", name)}
	}
	return ParseParams(d, v, r.opts.Defaults)
}

// Check validates every definition in force against the store (the model
// and its columns, the time column, dimensions, the SQL run with LIMIT 0)
// and returns every error, including the refused user files.
func (r *Registry) Check(ctx context.Context) []error {
	errs := r.Errors()
	for _, d := range r.List() {
		if _, err := r.checkStore(ctx, d, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
