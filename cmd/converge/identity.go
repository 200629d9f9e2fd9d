package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/ingest/identity"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.identityCmd() })
}

func (a *app) identityCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Resolve source ids into canonical customers (normalised e-mail, E.164 phone, explicit links)",
	}
	resolve := &cobra.Command{
		Use:   "resolve",
		Short: "Group every customer record into canonical customers and write identities (identity.source_priority orders anchors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer st.Close()
			s, err := identity.Resolve(cmd.Context(), st, a.cfg.IdentityRules)
			if err != nil {
				return err
			}
			return printIdentityStats(cmd.OutOrStdout(), s, asJSON)
		},
	}
	resolve.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Report what matched how in the current identities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			s := identity.Stats{ByRule: map[string]int{}, BySource: map[string]int{}}
			rows, err := st.Conn.Query(ctx, `SELECT source, rule, count() FROM
				(SELECT source, source_key, argMax(rule, matched_at) AS rule FROM identities GROUP BY source, source_key)
				GROUP BY source, rule`)
			if err != nil {
				return err
			}
			for rows.Next() {
				var src, rule string
				var n uint64
				if err := rows.Scan(&src, &rule, &n); err != nil {
					rows.Close()
					return err
				}
				s.ByRule[rule] += int(n)
				s.BySource[src] += int(n)
				s.Identities += int(n)
			}
			rows.Close()
			var customers, multi, largest uint64
			if err := st.Conn.QueryRow(ctx, `SELECT count(), countIf(length(srcs) > 1), max(n) FROM
				(SELECT customer_id, groupUniqArray(source) AS srcs, count() AS n FROM
					(SELECT source, source_key, argMax(customer_id, matched_at) AS customer_id FROM identities GROUP BY source, source_key)
				GROUP BY customer_id)`).Scan(&customers, &multi, &largest); err != nil {
				return err
			}
			s.Customers, s.MultiSource, s.LargestGroup = int(customers), int(multi), int(largest)
			return printIdentityStats(cmd.OutOrStdout(), s, asJSON)
		},
	}
	stats.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	link := &cobra.Command{
		Use:   "link SOURCE:KEY SOURCE:KEY",
		Short: "Declare that two source ids are one person (applied by the next resolve)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			x, err := identity.ParseNode(args[0])
			if err != nil {
				return usageError{err}
			}
			y, err := identity.ParseNode(args[1])
			if err != nil {
				return usageError{err}
			}
			st, err := a.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := identity.Link(cmd.Context(), st, x, y); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "linked %s = %s; run `converge identity resolve` to apply\n", x, y)
			return nil
		},
	}
	cmd.AddCommand(resolve, stats, link)
	return cmd
}

func printIdentityStats(w io.Writer, s identity.Stats, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	fmt.Fprintf(w, "%d source identities resolved into %d customers (%d known in several sources, largest group %d)\n",
		s.Identities, s.Customers, s.MultiSource, s.LargestGroup)
	if s.Changed > 0 || s.Removed > 0 {
		fmt.Fprintf(w, "%d identities written (new or changed), %d removed\n", s.Changed, s.Removed)
	}
	for _, title := range []string{"by rule", "by source"} {
		m := s.ByRule
		if title == "by source" {
			m = s.BySource
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "%s:\n", title)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-12s %d\n", k, m[k])
		}
	}
	return nil
}
