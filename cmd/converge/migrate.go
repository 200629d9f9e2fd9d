package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) migrateCmd() *cobra.Command {
	var forceUnlock bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the schema migrations not applied yet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if forceUnlock {
				if err := st.ForceUnlock(ctx); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "migration lock removed")
			}
			applied, err := st.Migrate(ctx)
			for _, m := range applied {
				fmt.Fprintf(cmd.OutOrStdout(), "applied %04d_%s\n", m.Version, m.Name)
			}
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "schema up to date (%s)\n", st.Describe())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&forceUnlock, "force-unlock", false, "remove a migration lock left by a process that died, then migrate")
	return cmd
}
