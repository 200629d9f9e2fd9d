package warehouse

import "context"

// OpenUnchecked runs stmt as Console.Open does but without the console's own
// checks, to show what the engine refuses by itself.
func (c Console) OpenUnchecked(ctx context.Context, st *Store, stmt string) (*ConsoleRows, error) {
	return c.open(ctx, st, stmt, false)
}

// AnalyzeBoundary runs only the second step of CheckBoundary, the
// analyzer's list of tables, on stmt (a SELECT).
func (s *Store) AnalyzeBoundary(ctx context.Context, stmt string) error {
	toks, err := tokenize(stmt)
	if err != nil {
		return err
	}
	b := &boundary{st: s, conn: s.Conn, who: "the console", settings: nil}
	return b.analyze(ctx, stmt, toks, nil, 0)
}

// PlanError is the error planning ms for one server gives, if any.
func PlanError(ms []Migration) error {
	_, err := (&Store{}).migrationPlan(ms)
	return err
}

// MigrateFirst applies the first n embedded migrations: a store as an older converge left it.
func (s *Store) MigrateFirst(ctx context.Context, n int) ([]Migration, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	return s.migrate(ctx, ms[:n])
}
