package warehouse

import "context"

// OpenUnchecked runs stmt as Console.Open does but without the console's own
// checks, to show what the engine refuses by itself.
func (c Console) OpenUnchecked(ctx context.Context, st *Store, stmt string) (*ConsoleRows, error) {
	return c.open(ctx, st, stmt)
}

// MigrateFirst applies the first n embedded migrations: a store as an older converge left it.
func (s *Store) MigrateFirst(ctx context.Context, n int) ([]Migration, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	return s.migrate(ctx, ms[:n])
}
