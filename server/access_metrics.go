package server

import (
	"context"
	"fmt"
	"slices"

	"github.com/converge-dev/converge/access"
)

// roleMetrics is the metrics layer as the request's user may see it: a metric restricted to
// roles (MetricInfo.Roles) is left out of Catalog and Definitions, and Query and Table answer
// it as an unknown metric (404), for the user on the context (access.UserFrom; none sees only
// unrestricted metrics). Every page and API reads metrics through it, so a new page hides
// restricted metrics without doing anything.
type roleMetrics struct{ m Metrics }

func visible(ctx context.Context, info MetricInfo) bool {
	u, ok := access.UserFrom(ctx)
	role := access.Public
	if ok {
		role = u.Role
	}
	return role.Sees(info.Roles)
}

func filterVisible(ctx context.Context, list []MetricInfo, err error) ([]MetricInfo, error) {
	if err != nil {
		return nil, err
	}
	out := make([]MetricInfo, 0, len(list))
	for _, m := range list {
		if visible(ctx, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (r roleMetrics) Catalog(ctx context.Context) ([]MetricInfo, error) {
	list, err := r.m.Catalog(ctx)
	return filterVisible(ctx, list, err)
}

func (r roleMetrics) Definitions(ctx context.Context) ([]MetricInfo, error) {
	list, err := r.m.Definitions(ctx)
	return filterVisible(ctx, list, err)
}

// hidden is the error for a metric the user may not see: the one of an unknown metric.
func hidden(name string) error { return errNotFound(fmt.Sprintf("There is no KPI named %q.", name)) }

// check decides after the fact (the answer carries the definition): a hidden metric's answer,
// or its error, is replaced by the unknown-metric error.
func (r roleMetrics) check(ctx context.Context, name string, info *MetricInfo, err error) error {
	if err == nil && info != nil {
		if !visible(ctx, *info) {
			return hidden(name)
		}
		return nil
	}
	// An error could tell a hidden metric's details: answer it like an unknown one.
	if defs, derr := r.m.Definitions(ctx); derr == nil {
		for _, d := range defs {
			if d.Name == name && !visible(ctx, d) {
				return hidden(name)
			}
		}
	}
	return err
}

func (r roleMetrics) Query(ctx context.Context, name string, q MetricQuery) (*MetricResult, error) {
	res, err := r.m.Query(ctx, name, q)
	var info *MetricInfo
	if res != nil {
		info = &res.Info
	}
	if err := r.check(ctx, name, info, err); err != nil {
		return nil, err
	}
	return res, nil
}

func (r roleMetrics) Table(ctx context.Context, name string, q MetricQuery) (*MetricTable, error) {
	t, err := r.m.Table(ctx, name, q)
	var info *MetricInfo
	if t != nil {
		info = &t.Info
	}
	if err := r.check(ctx, name, info, err); err != nil {
		return nil, err
	}
	return t, nil
}

// Explain answers a hidden metric as an unknown one. A derived metric's inputs are its
// formula's (shown on its page), so they are shown with it.
func (r roleMetrics) Explain(ctx context.Context, name string, q MetricQuery) ([]MetricPath, error) {
	defs, err := r.m.Definitions(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		if d.Name == name && !visible(ctx, d) {
			return nil, hidden(name)
		}
	}
	return r.m.Explain(ctx, name, q)
}

// Rollups leaves out the rollups and raw metrics of metrics the user may not see.
func (r roleMetrics) Rollups(ctx context.Context) (RollupsReport, error) {
	rep, err := r.m.Rollups(ctx)
	if err != nil {
		return rep, err
	}
	defs, err := r.m.Definitions(ctx)
	if err != nil {
		return RollupsReport{}, err
	}
	hide := map[string]bool{}
	for _, d := range defs {
		if !visible(ctx, d) {
			hide[d.Name] = true
		}
	}
	out := RollupsReport{}
	for _, x := range rep.Rollups {
		// A view's rollup is shown while the user may see a metric that reads the view.
		if !hide[x.Metric] && (len(x.Serves) == 0 || slices.ContainsFunc(x.Serves, func(n string) bool { return !hide[n] })) {
			out.Rollups = append(out.Rollups, x)
		}
	}
	for _, x := range rep.Raw {
		if !hide[x.Metric] {
			out.Raw = append(out.Raw, x)
		}
	}
	return out, nil
}
