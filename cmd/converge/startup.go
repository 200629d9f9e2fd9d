package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/converge-dev/converge/warehouse"
)

// startRetry is how often serve retries preparing a remote store that did not answer at start.
const startRetry = 2 * time.Second

// storeGate is the store as the server sees it (readiness, the store_up gauge) while serve
// prepares it: Ping fails with why the store is not prepared yet (the last attempt's error)
// until the preparation has succeeded once, and is the store's own ping after. So /readyz
// answers 503 with the reason while a remote store is unreachable at start, and turns 200 by
// itself when it comes up; a store lost later fails its own ping the same way.
type storeGate struct {
	*warehouse.Store
	mu      sync.Mutex
	pending error // nil once prepared
}

func (g *storeGate) Ping(ctx context.Context) error {
	g.mu.Lock()
	err := g.pending
	g.mu.Unlock()
	if err != nil {
		return err
	}
	return g.Store.Ping(ctx)
}

// prepared tells whether the store has been prepared.
func (g *storeGate) prepared() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending == nil
}

func (g *storeGate) setPending(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("starting: %w (retrying every %s)", err, startRetry)
	}
	g.pending = err
}

// prepareUntilReady calls prepare every startRetry until it succeeds (nil) or ctx ends (nil:
// a shutdown before the store came up is not an error). Each failure is recorded in the gate.
func (g *storeGate) prepareUntilReady(ctx context.Context, prepare func(context.Context) error) error {
	t := time.NewTicker(startRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := prepare(ctx)
		if err == nil {
			g.setPending(nil)
			return nil
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil
		}
		g.setPending(err)
	}
}
