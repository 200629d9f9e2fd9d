// Command converge is the whole product in one binary: the dashboard server,
// the analyst's command line, migrations and (later) ingest. Each subcommand
// has its own file; this one builds the root command and what they share.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/server"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the VCS revision from the build info is used.
var version = ""

func convergeVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			return "dev-" + rev + dirty
		}
	}
	return "dev"
}

// app is what every subcommand gets: the configuration and a logger.
type app struct {
	configPath string
	cfg        *Config
	log        *slog.Logger
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "converge",
		Short:         "One set of KPIs across sales, marketing and service",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(a.configPath, cmd.Flags())
			if err != nil {
				return err
			}
			a.cfg = cfg
			a.log = newLogger(cfg, cmd.ErrOrStderr())
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", "", "config file (default ./converge.yaml when present)")
	pf.String("data-dir", "", "data directory of the embedded store (env CONVERGE_DATA_DIR)")
	pf.String("clickhouse-addr", "", "host:port of a ClickHouse server to use instead of the embedded store (env CONVERGE_CLICKHOUSE_ADDR)")
	pf.String("log-level", "", "debug, info, warn or error")
	root.AddCommand(a.serveCmd(), a.sqlCmd(), a.migrateCmd(), a.versionCmd(), a.configCmd())
	for _, c := range subcommands {
		root.AddCommand(c(a))
	}
	return root
}

// subcommands are added by the files of other subcommands from init, so that
// a new command is one new file.
var subcommands []func(*app) *cobra.Command

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts) // one JSON object per line
	}
	// Lines logged with a request's context carry its request_id (server.LogHandler).
	return slog.New(server.LogHandler(h))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "converge:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is the exit status for a command's error: 2 for a usage error, else 1.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is a mistake in how a command was called (exit status 2).
type usageError struct{ error }
