package metrics

import (
	"context"
	"log/slog"

	"github.com/converge-dev/converge/warehouse"
)

// loneLane runs again, one at a time, the statements the store stopped because all the
// queries running together wanted more memory than it has (warehouse.TotalMemoryLimit): the
// dashboard runs its tiles concurrently, which is fast until a few heavy ones coincide on a
// large store. A statement over its own limit (engine.max_query_memory) is not retried: alone
// it would fail the same way.
type loneLane chan struct{}

// loneRetries is how many times a statement is retried alone.
const loneRetries = 2

func newLoneLane() loneLane { return make(loneLane, 1) }

// retry runs run; while it fails for lack of the store's total memory, it runs it again
// (at most loneRetries times), each time alone in the lane.
func (l loneLane) retry(ctx context.Context, log *slog.Logger, run func() error) error {
	err := run()
	for i := 0; i < loneRetries && warehouse.TotalMemoryLimit(err); i++ {
		select {
		case l <- struct{}{}:
		case <-ctx.Done():
			return err
		}
		log.Info("metric statement stopped for lack of the store's memory: running it again, alone", "attempt", i+1, "error", err)
		err = run()
		<-l
	}
	return err
}
