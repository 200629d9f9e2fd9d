package warehouse

import "context"

// OpenUnchecked runs stmt as Console.Open does but without the console's own
// checks, to show what the engine refuses by itself.
func (c Console) OpenUnchecked(ctx context.Context, st *Store, stmt string) (*ConsoleRows, error) {
	return c.open(ctx, st, stmt, false)
}
