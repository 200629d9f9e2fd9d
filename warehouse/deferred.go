package warehouse

import (
	"context"
	"log/slog"
)

// OpenDeferred is Open for a server that must start before its store answers. A remote
// store's connection is made without contacting the server: the caller calls Prepare (which
// creates the database and pings) and retries it until it succeeds, while queries in the
// meantime fail with the connection's error. The embedded store is opened as by Open (an
// engine that cannot open is an error at once), and is prepared already.
func OpenDeferred(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	if cfg.Addr == "" {
		return Open(ctx, cfg, log)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{Database: cfg.Database, AppDatabase: cfg.AppDatabase, cfg: cfg, log: log}
	conn, err := s.connect(cfg.Database)
	if err != nil {
		return nil, err
	}
	s.Conn, s.console = conn, conn
	if err := s.connectMore(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Prepare makes sure the store's database exists and the store answers (what Open does
// before it returns). It is safe to call again after a failure.
func (s *Store) Prepare(ctx context.Context) error {
	if err := s.ensureDatabase(ctx); err != nil {
		return err
	}
	return s.Ping(ctx)
}
