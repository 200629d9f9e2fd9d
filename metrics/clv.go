package metrics

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"gonum.org/v1/gonum/mathext"

	"github.com/converge-dev/converge/warehouse"
)

// Predictive CLV: BG/NBD (Fader, Hardie & Lee 2005) for the number of future
// repeat purchases and Gamma-Gamma (Fader & Hardie 2013) for the spend per
// purchase, both fitted by maximum likelihood (Nelder-Mead on the log
// parameters), CLV = Σ_i E[M] · (E[X(t_i)] − E[X(t_{i−1})]) / (1+d)^i over
// monthly steps i (kpi-definitions.md).

//go:embed clv_inputs.sql
var clvInputsSQL string

// CLVCustomer is one customer's calibration summary, in the fit's time unit:
// X repeat purchases (same-day purchases merged, the first excluded), Tx the
// time of the last purchase since the first, T the time from the first
// purchase to the end of calibration, Monetary the mean value of the repeat
// purchases (0 when X = 0).
type CLVCustomer struct {
	ID                 string
	X, Tx, T, Monetary float64
}

// BGNBD are fitted BG/NBD parameters: purchase rate λ ~ Gamma(r, α), dropout
// probability p ~ Beta(a, b), time in the fit's unit.
type BGNBD struct {
	R             float64 `json:"r"`
	Alpha         float64 `json:"alpha"`
	A             float64 `json:"a"`
	B             float64 `json:"b"`
	LogLikelihood float64 `json:"log_likelihood"`
}

// GammaGamma are fitted Gamma-Gamma parameters: spend per purchase z ~
// Gamma(p, ν), ν ~ Gamma(q, γ).
type GammaGamma struct {
	P             float64 `json:"p"`
	Q             float64 `json:"q"`
	Gamma         float64 `json:"gamma"`
	LogLikelihood float64 `json:"log_likelihood"`
}

func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

func lgamma(x float64) float64 { v, _ := math.Lgamma(x); return v }

// bgnbdLL is the BG/NBD log-likelihood of one customer (FHL 2005, eq. 6).
func bgnbdLL(r, alpha, a, b float64, c CLVCustomer) float64 {
	x := c.X
	base := lgamma(r+x) - lgamma(r) + r*math.Log(alpha)
	t1 := lbeta(a, b+x) - lbeta(a, b) - (r+x)*math.Log(alpha+c.T)
	if x == 0 {
		return base + t1
	}
	t2 := lbeta(a+1, b+x-1) - lbeta(a, b) - (r+x)*math.Log(alpha+c.Tx)
	m := math.Max(t1, t2)
	return base + m + math.Log(math.Exp(t1-m)+math.Exp(t2-m))
}

// FitBGNBD fits BG/NBD to the customers by maximum likelihood.
func FitBGNBD(cs []CLVCustomer) (BGNBD, error) {
	if len(cs) == 0 {
		return BGNBD{}, errors.New("bg/nbd: no customers")
	}
	f := func(u []float64) float64 {
		r, alpha, a, b := math.Exp(u[0]), math.Exp(u[1]), math.Exp(u[2]), math.Exp(u[3])
		var ll float64
		for _, c := range cs {
			ll += bgnbdLL(r, alpha, a, b, c)
		}
		if math.IsNaN(ll) || math.IsInf(ll, 0) {
			return math.Inf(1)
		}
		return -ll / float64(len(cs))
	}
	u, v, err := minimize(f, []float64{0, 0, 0, 0})
	if err != nil {
		return BGNBD{}, fmt.Errorf("bg/nbd: %w", err)
	}
	return BGNBD{R: math.Exp(u[0]), Alpha: math.Exp(u[1]), A: math.Exp(u[2]), B: math.Exp(u[3]), LogLikelihood: -v * float64(len(cs))}, nil
}

// FitGammaGamma fits Gamma-Gamma to the customers with X > 0.
func FitGammaGamma(cs []CLVCustomer) (GammaGamma, error) {
	var rep []CLVCustomer
	for _, c := range cs {
		if c.X > 0 && c.Monetary > 0 {
			rep = append(rep, c)
		}
	}
	if len(rep) < 2 {
		return GammaGamma{}, errors.New("gamma-gamma: fewer than 2 customers with repeat purchases")
	}
	f := func(u []float64) float64 {
		p, q, g := math.Exp(u[0]), math.Exp(u[1]), math.Exp(u[2])
		var ll float64
		for _, c := range rep {
			px := p * c.X
			ll += lgamma(px+q) - lgamma(px) - lgamma(q) + q*math.Log(g) + (px-1)*math.Log(c.Monetary) + px*math.Log(c.X) - (px+q)*math.Log(g+c.X*c.Monetary)
		}
		if math.IsNaN(ll) || math.IsInf(ll, 0) {
			return math.Inf(1)
		}
		return -ll / float64(len(rep))
	}
	u, v, err := minimize(f, []float64{0, math.Log(2), 0})
	if err != nil {
		return GammaGamma{}, fmt.Errorf("gamma-gamma: %w", err)
	}
	return GammaGamma{P: math.Exp(u[0]), Q: math.Exp(u[1]), Gamma: math.Exp(u[2]), LogLikelihood: -v * float64(len(rep))}, nil
}

// minimize runs Nelder-Mead from x0, restarted from its optimum until the
// value stops improving.
func minimize(f func([]float64) float64, x0 []float64) ([]float64, float64, error) {
	x, v := slices.Clone(x0), f(x0)
	for range 10 {
		nx, nv := nelderMead(f, x, 0.5, 5000, 1e-12)
		if math.IsInf(nv, 0) || math.IsNaN(nv) {
			return nil, 0, errors.New("likelihood not finite")
		}
		improved := v-nv > 1e-12
		x, v = nx, nv
		if !improved {
			break
		}
	}
	if math.IsInf(v, 0) {
		return nil, 0, errors.New("likelihood not finite at any point tried")
	}
	return x, v, nil
}

// nelderMead is the standard downhill simplex (reflection 1, expansion 2,
// contraction 0.5, shrink 0.5) from x0 with initial step.
func nelderMead(f func([]float64) float64, x0 []float64, step float64, maxIter int, tol float64) ([]float64, float64) {
	n := len(x0)
	pts := make([][]float64, n+1)
	vals := make([]float64, n+1)
	for i := range pts {
		pts[i] = slices.Clone(x0)
		if i > 0 {
			pts[i][i-1] += step
		}
		vals[i] = f(pts[i])
	}
	at := func(c []float64, t float64, w []float64) []float64 { // c + t (c - w)
		out := make([]float64, n)
		for j := range out {
			out[j] = c[j] + t*(c[j]-w[j])
		}
		return out
	}
	for range maxIter {
		idx := make([]int, n+1)
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return cmpFloat(vals[a], vals[b]) })
		sp, sv := make([][]float64, n+1), make([]float64, n+1)
		for i, k := range idx {
			sp[i], sv[i] = pts[k], vals[k]
		}
		pts, vals = sp, sv
		if math.Abs(vals[n]-vals[0]) <= tol*(math.Abs(vals[0])+tol) {
			break
		}
		c := make([]float64, n)
		for i := 0; i < n; i++ {
			for j := range c {
				c[j] += pts[i][j] / float64(n)
			}
		}
		xr := at(c, 1, pts[n])
		fr := f(xr)
		switch {
		case fr < vals[0]:
			xe := at(c, 2, pts[n])
			if fe := f(xe); fe < fr {
				pts[n], vals[n] = xe, fe
			} else {
				pts[n], vals[n] = xr, fr
			}
		case fr < vals[n-1]:
			pts[n], vals[n] = xr, fr
		default:
			xc := at(c, -0.5, pts[n])
			if fc := f(xc); fc < vals[n] {
				pts[n], vals[n] = xc, fc
			} else {
				for i := 1; i <= n; i++ {
					for j := range pts[i] {
						pts[i][j] = pts[0][j] + 0.5*(pts[i][j]-pts[0][j])
					}
					vals[i] = f(pts[i])
				}
			}
		}
	}
	best := 0
	for i := range vals {
		if vals[i] < vals[best] {
			best = i
		}
	}
	return pts[best], vals[best]
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b || math.IsNaN(b) && !math.IsNaN(a):
		return -1
	case a > b || math.IsNaN(a) && !math.IsNaN(b):
		return 1
	}
	return 0
}

// PAlive is the probability that the customer is alive at the end of
// calibration (FHL 2005, eq. 11).
func (m BGNBD) PAlive(c CLVCustomer) float64 {
	if c.X == 0 {
		return 1
	}
	return 1 / (1 + m.A/(m.B+c.X-1)*math.Pow((m.Alpha+c.T)/(m.Alpha+c.Tx), m.R+c.X))
}

// ExpectedPurchases is E[X(t) | x, t_x, T]: the expected purchases in the
// next t units (FHL 2005, eq. 10).
func (m BGNBD) ExpectedPurchases(t float64, c CLVCustomer) float64 {
	if t <= 0 {
		return 0
	}
	r, alpha, a, b, x := m.R, m.Alpha, m.A, m.B, c.X
	z := t / (alpha + c.T + t)
	h := mathext.Hypergeo(r+x, b+x, a+b+x-1, z)
	num := (a + b + x - 1) / (a - 1) * (1 - math.Pow((alpha+c.T)/(alpha+c.T+t), r+x)*h)
	den := 1.0
	if x > 0 {
		den += a / (b + x - 1) * math.Pow((alpha+c.T)/(alpha+c.Tx), r+x)
	}
	return num / den
}

// ExpectedSpend is E[M | x, z̄]: the expected value of a purchase (Fader &
// Hardie 2013, eq. 5); the population mean γp/(q−1) when X = 0.
func (g GammaGamma) ExpectedSpend(c CLVCustomer) float64 {
	if c.X == 0 {
		return g.Gamma * g.P / (g.Q - 1)
	}
	return (g.Gamma + c.X*c.Monetary) * g.P / (g.P*c.X + g.Q - 1)
}

// CLVOptions configure FitCLV.
type CLVOptions struct {
	CalibrationEnd time.Time // last day of calibration (inclusive), UTC date
	Unit           string    // "week" (default) or "day"
	HorizonMonths  int       // default 12
	Discount       float64   // monthly discount rate d; default 0.01
	Currency       string    // restrict to orders in this currency; required when there are several
	Write          bool      // write customer_value rows
}

// CLVFit is the result of FitCLV.
type CLVFit struct {
	BGNBD           BGNBD      `json:"bgnbd"`
	GammaGamma      GammaGamma `json:"gamma_gamma"`
	Customers       int        `json:"customers"`
	RepeatCustomers int        `json:"repeat_customers"`
	// Correlation between purchase count and mean spend of repeat
	// customers: Gamma-Gamma assumes it is near 0.
	Correlation    float64  `json:"spend_frequency_correlation"`
	Unit           string   `json:"unit"`
	CalibrationEnd string   `json:"calibration_end"`
	HorizonMonths  int      `json:"horizon_months"`
	HorizonUnits   float64  `json:"horizon_units"` // the horizon in Unit: 12 months = 52.18 weeks
	Discount       float64  `json:"discount_rate"`
	Currency       string   `json:"currency"`
	MeanCLV        float64  `json:"mean_clv"`
	Written        int      `json:"rows_written"`
	Warnings       []string `json:"warnings,omitempty"`
}

// daysPerMonth is the mean month (365.25 / 12 days).
const daysPerMonth = 365.25 / 12

// FitCLV reads the calibration data from the store, fits both models and,
// with Write, stores per-customer predictions in customer_value (model
// bgnbd_gg, as_of = calibration end) and the fitted parameters in clv_fits.
func FitCLV(ctx context.Context, st *warehouse.Store, o CLVOptions) (*CLVFit, error) {
	if o.Unit == "" {
		o.Unit = "week"
	}
	unitDays := map[string]float64{"week": 7, "day": 1}[o.Unit]
	if unitDays == 0 {
		return nil, &ParamError{Param: "unit", Reason: fmt.Sprintf("%q is not week or day", o.Unit)}
	}
	if o.HorizonMonths == 0 {
		o.HorizonMonths = 12
	}
	if o.HorizonMonths < 0 || o.HorizonMonths > 120 {
		return nil, &ParamError{Param: "horizon_months", Reason: fmt.Sprintf("%d is not in 1..120", o.HorizonMonths)}
	}
	if o.Discount < 0 || o.Discount >= 1 {
		return nil, &ParamError{Param: "discount", Reason: fmt.Sprintf("%v is not a monthly rate in [0, 1)", o.Discount)}
	}
	if o.CalibrationEnd.IsZero() {
		return nil, &ParamError{Param: "calibration_end", Reason: "required"}
	}
	end := time.Date(o.CalibrationEnd.Year(), o.CalibrationEnd.Month(), o.CalibrationEnd.Day(), 0, 0, 0, 0, time.UTC)
	qctx := clickhouse.Context(warehouse.Materialized(ctx), clickhouse.WithParameters(clickhouse.Parameters{
		"calibration_end": end.Format(time.DateOnly), "currency": paramText(o.Currency)}))
	rows, err := st.Conn.Query(qctx, clvInputsSQL)
	if err != nil {
		return nil, fmt.Errorf("clv inputs: %w", err)
	}
	var cs []CLVCustomer
	currencies := map[string]bool{}
	for rows.Next() {
		var (
			id          string
			first, last time.Time
			days        uint64
			repeat      float64
			cur         []string
		)
		if err := rows.Scan(&id, &first, &last, &days, &repeat, &cur); err != nil {
			rows.Close()
			return nil, fmt.Errorf("clv inputs: %w", err)
		}
		for _, c := range cur {
			currencies[c] = true
		}
		c := CLVCustomer{ID: id, X: float64(days - 1), Tx: last.Sub(first).Hours() / 24 / unitDays, T: end.Sub(first).Hours() / 24 / unitDays}
		if c.X > 0 {
			c.Monetary = repeat / c.X
		}
		cs = append(cs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clv inputs: %w", err)
	}
	if len(currencies) > 1 {
		var list []string
		for c := range currencies {
			list = append(list, c)
		}
		slices.Sort(list)
		return nil, &ParamError{Param: "currency", Reason: fmt.Sprintf("orders are in several currencies (%v): fit one at a time", list)}
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("clv: no customer with an order up to %s", end.Format(time.DateOnly))
	}
	fit := &CLVFit{Customers: len(cs), Unit: o.Unit, CalibrationEnd: end.Format(time.DateOnly), HorizonMonths: o.HorizonMonths,
		HorizonUnits: float64(o.HorizonMonths) * daysPerMonth / unitDays, Discount: o.Discount}
	for c := range currencies {
		fit.Currency = c
	}
	if fit.BGNBD, err = FitBGNBD(cs); err != nil {
		return nil, err
	}
	if fit.GammaGamma, err = FitGammaGamma(cs); err != nil {
		return nil, err
	}
	var xs, ms []float64
	for _, c := range cs {
		if c.X > 0 {
			xs, ms = append(xs, c.X), append(ms, c.Monetary)
		}
	}
	fit.RepeatCustomers = len(xs)
	fit.Correlation = correlation(xs, ms)
	if len(cs) < 200 {
		fit.Warnings = append(fit.Warnings, fmt.Sprintf("only %d customers: the estimates are unreliable (aim for several hundred)", len(cs)))
	}
	if math.Abs(fit.Correlation) > 0.3 {
		fit.Warnings = append(fit.Warnings, fmt.Sprintf("purchase count and mean spend correlate (%.2f): Gamma-Gamma assumes they are independent", fit.Correlation))
	}

	type pred struct{ exp, alive, spend, clv float64 }
	preds := make([]pred, len(cs))
	var total float64
	for i, c := range cs {
		spend := fit.GammaGamma.ExpectedSpend(c)
		var clv, prev float64
		for m := 1; m <= o.HorizonMonths; m++ {
			ex := fit.BGNBD.ExpectedPurchases(float64(m)*daysPerMonth/unitDays, c)
			clv += spend * (ex - prev) / math.Pow(1+o.Discount, float64(m))
			prev = ex
		}
		preds[i] = pred{prev, fit.BGNBD.PAlive(c), spend, clv}
		total += clv
	}
	fit.MeanCLV = total / float64(len(cs))
	if !o.Write {
		return fit, nil
	}
	b, err := st.Conn.PrepareBatch(ctx, `INSERT INTO customer_value (customer_id, as_of, model, model_version, calibration_end, unit, x, t_x, T,
		monetary_value, expected_purchases, p_alive, expected_spend, clv, currency, horizon_months, discount_rate)`)
	if err != nil {
		return nil, fmt.Errorf("customer_value: %w", err)
	}
	for i, c := range cs {
		p := preds[i]
		if err := b.Append(c.ID, end, "bgnbd_gg", "1", end, o.Unit, c.X, c.Tx, c.T, c.Monetary, p.exp, p.alive, p.spend, p.clv,
			fit.Currency, uint16(o.HorizonMonths), o.Discount); err != nil {
			_ = b.Abort()
			return nil, fmt.Errorf("customer_value: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return nil, fmt.Errorf("customer_value: %w", err)
	}
	fit.Written = len(cs)
	// The parameters behind the snapshot, so it can be carried forward (P(alive) on a later day).
	fb, err := st.Conn.PrepareBatch(ctx, `INSERT INTO clv_fits (model, as_of, model_version, calibration_end, unit, currency, customers,
		r, alpha, a, b, bgnbd_log_likelihood, gg_p, gg_q, gg_gamma, gg_log_likelihood, horizon_months, discount_rate)`)
	if err != nil {
		return nil, fmt.Errorf("clv_fits: %w", err)
	}
	if err := fb.Append("bgnbd_gg", end, "1", end, o.Unit, fit.Currency, uint32(len(cs)),
		fit.BGNBD.R, fit.BGNBD.Alpha, fit.BGNBD.A, fit.BGNBD.B, fit.BGNBD.LogLikelihood,
		fit.GammaGamma.P, fit.GammaGamma.Q, fit.GammaGamma.Gamma, fit.GammaGamma.LogLikelihood,
		uint16(o.HorizonMonths), o.Discount); err != nil {
		_ = fb.Abort()
		return nil, fmt.Errorf("clv_fits: %w", err)
	}
	if err := fb.Send(); err != nil {
		return nil, fmt.Errorf("clv_fits: %w", err)
	}
	return fit, nil
}

func correlation(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return math.NaN()
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}
