package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/ingest/events"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.tokenCmd() })
}

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens (stored hashed)"}
	var scope, name string
	var expires time.Duration
	create := &cobra.Command{
		Use:   "create --scope ingest|read|admin|metrics [--name N] [--expires 720h]",
		Short: "Create a token; it is printed once and cannot be shown again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var exp *time.Time
			if expires > 0 {
				t := time.Now().Add(expires).UTC()
				exp = &t
			}
			st, err := a.openStore(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.Migrate(cmd.Context()); err != nil {
				return err
			}
			full, tok, err := events.NewTokens(st, 0).Create(cmd.Context(), name, scope, "cli", exp)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), full)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (scope %s) created; store it now, it is not shown again\n", tok.ID, tok.Scope)
			return a.cliAudit(cmd.Context(), st, access.ActionTokenCreate, tok.ID, map[string]string{"scope": tok.Scope, "name": tok.Name})
		},
	}
	create.Flags().StringVar(&scope, "scope", "", "what the token may do: "+strings.Join(events.Scopes, ", "))
	create.Flags().StringVar(&name, "name", "", "a name to recognise it by")
	create.Flags().DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (default: does not expire)")
	_ = create.MarkFlagRequired("scope")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (ids, names, scopes; never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer st.Close()
			toks, err := events.NewTokens(st, 0).List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "id\tname\tscope\tcreated\texpires\trevoked")
			for _, t := range toks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, t.CreatedAt.Format(time.RFC3339), optTime(t.ExpiresAt), optTime(t.RevokedAt))
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (within 30 s on a running server)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := events.NewTokens(st, 0).Revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			if err := a.cliAudit(cmd.Context(), st, access.ActionTokenRevoke, args[0], nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func optTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
