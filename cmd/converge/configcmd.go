package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration reference"}
	cmd.AddCommand(&cobra.Command{
		Use:   "keys",
		Short: "List every configuration key with its default and environment variable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys := make([]string, 0, len(defaults))
			for k := range defaults {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%-28s %-34s %s\n", "key", "env", "default")
			for _, k := range keys {
				env := "CONVERGE_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
				fmt.Fprintf(out, "%-28s %-34s %v\n", k, env, defaults[k])
			}
			return nil
		},
	})
	cmd.AddCommand(a.configDocCmd())
	return cmd
}
