package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/warehouse/embedded"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print converge's version and the store engine's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "converge %s (%s, %s/%s)\n", convergeVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			st, err := a.openStore(cmd.Context(), false)
			if err != nil {
				fmt.Fprintf(out, "engine: unavailable: %v\n", err)
				return err
			}
			defer st.Close()
			v, err := st.ServerVersion(cmd.Context())
			if err != nil {
				return err
			}
			kind := "ClickHouse server " + st.Describe()
			if st.Engine != nil {
				kind = fmt.Sprintf("%s (chDB library %s)", st.Describe(), embedded.Version)
			}
			fmt.Fprintf(out, "engine: ClickHouse %s, %s\n", v, kind)
			return nil
		},
	}
}
