package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/converge-dev/converge/metrics"
)

func init() {
	subcommands = append(subcommands, func(a *app) *cobra.Command { return a.clvCmd() })
}

func (a *app) clvCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "clv", Short: "Predictive customer lifetime value (BG/NBD + Gamma-Gamma)"}
	var (
		calEnd, unit, format, currency string
		horizon                        int
		discount                       float64
		dryRun                         bool
	)
	fit := &cobra.Command{
		Use:   "fit --calibration-end DATE [--unit week|day] [--horizon-months N] [--discount R] [--format table|json]",
		Short: "Fit BG/NBD and Gamma-Gamma by maximum likelihood on the orders up to DATE and write customer_value",
		Long: `Fits BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013) on each customer's
purchases up to --calibration-end (inclusive, UTC days; same-day purchases merged; cancelled and
anonymous orders left out; revenue net of discounts, before refunds), prints the parameters and
writes per-customer expected purchases over the horizon, P(alive), expected spend per purchase and
CLV = Σ_i E[M]·(E[X(t_i)] − E[X(t_i−1)]) / (1+d)^i over monthly steps i to customer_value
(model bgnbd_gg, as_of = the calibration end). --discount is the monthly rate d.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "table", "json":
			default:
				return usageError{fmt.Errorf("--format: %q is not one of table, json", format)}
			}
			if unit != "week" && unit != "day" {
				return usageError{fmt.Errorf("--unit: %q is not week or day", unit)}
			}
			end, err := time.Parse(time.DateOnly, calEnd)
			if err != nil {
				return usageError{fmt.Errorf("--calibration-end: %q is not a date YYYY-MM-DD", calEnd)}
			}
			if horizon < 1 || horizon > 120 {
				return usageError{fmt.Errorf("--horizon-months: %d is not in 1..120", horizon)}
			}
			if discount < 0 || discount >= 1 {
				return usageError{fmt.Errorf("--discount: %v is not a monthly rate in [0, 1)", discount)}
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			start := time.Now()
			res, err := metrics.FitCLV(ctx, st, metrics.CLVOptions{CalibrationEnd: end, Unit: unit, HorizonMonths: horizon,
				Discount: discount, Currency: currency, Write: !dryRun})
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				a.log.Warn("clv fit: " + w)
			}
			a.log.Info("clv fit", "customers", res.Customers, "rows_written", res.Written, "took", time.Since(start).Round(time.Millisecond))
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
			row("bgnbd.r", res.BGNBD.R)
			row("bgnbd.alpha", res.BGNBD.Alpha)
			row("bgnbd.a", res.BGNBD.A)
			row("bgnbd.b", res.BGNBD.B)
			row("bgnbd.log_likelihood", res.BGNBD.LogLikelihood)
			row("gamma_gamma.p", res.GammaGamma.P)
			row("gamma_gamma.q", res.GammaGamma.Q)
			row("gamma_gamma.gamma", res.GammaGamma.Gamma)
			row("gamma_gamma.log_likelihood", res.GammaGamma.LogLikelihood)
			row("customers", res.Customers)
			row("repeat_customers", res.RepeatCustomers)
			row("spend_frequency_correlation", res.Correlation)
			row("unit", res.Unit)
			row("horizon", fmt.Sprintf("%d months = %.2f %ss", res.HorizonMonths, res.HorizonUnits, res.Unit))
			row("discount_rate (monthly)", res.Discount)
			row("currency", res.Currency)
			row("mean_clv", res.MeanCLV)
			row("rows_written", res.Written)
			for _, w := range res.Warnings {
				row("warning", w)
			}
			return tw.Flush()
		},
	}
	f := fit.Flags()
	f.StringVar(&calEnd, "calibration-end", "", "last day of the calibration window, YYYY-MM-DD (inclusive; required)")
	f.StringVar(&unit, "unit", "week", "time unit of the fit: week or day")
	f.IntVar(&horizon, "horizon-months", 12, "forecast horizon in months")
	f.Float64Var(&discount, "discount", 0.01, "monthly discount rate d")
	f.StringVar(&currency, "currency", "", "only orders in this currency (required when there are several)")
	f.StringVar(&format, "format", "table", "table or json")
	f.BoolVar(&dryRun, "dry-run", false, "print the fit without writing customer_value")
	_ = fit.MarkFlagRequired("calibration-end")
	cmd.AddCommand(fit)
	return cmd
}
