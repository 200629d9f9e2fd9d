package bench

import (
	"context"
	"fmt"
	"time"
)

// dashboardPages are the pages beside the overview an executive opens, each as it opens.
var dashboardPages = []struct{ name, target string }{
	{"channels", "/channels"},
	{"funnel", "/funnel"},
	{"retention", "/retention"},
	{"overview by 4R", "/?view=4r"},
	{"KPI detail (revenue_gross)", "/kpi/revenue_gross"},
	{"customers", "/customers"},
}

// dashboard loads each of dashboardPages as it opens, with the server's clock set to the
// data's last day: cfg.PageCold cold loads (a fresh registry each, its statements replayed
// one after another after it, the slowest metrics named) and cfg.Warm warm ones.
func dashboard(ctx context.Context, cfg *Config) ([]Result, error) {
	last, err := lastOrder(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opened := func() time.Time { return last }
	var out []Result
	for _, p := range dashboardPages {
		l, err := pageLoads(ctx, cfg, p.target, opened, cfg.PageCold)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		out = append(out, l.coldResult(p.name+" as opened, cold", p.target+" with the clock at "+last.Format(time.DateOnly)),
			Result{Group: "page", Name: p.name + " as opened, warm", Unit: "ms", Median: l.warmMedian, P95: l.warmP95, N: cfg.Warm})
	}
	return out, nil
}
