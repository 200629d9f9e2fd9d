package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

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
			out := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 1, ' ', 0)
			fmt.Fprintln(out, "key\tenv\tdefault")
			for _, k := range keys {
				env := "CONVERGE_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
				fmt.Fprintf(out, "%s\t%s\t%v\n", k, env, defaults[k])
			}
			return out.Flush()
		},
	})
	cmd.AddCommand(a.configDocCmd())
	return cmd
}
