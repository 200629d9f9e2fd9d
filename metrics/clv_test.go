package metrics

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/converge-dev/converge/warehouse/whtest"
)

// simulate draws customers from BG/NBD(r, alpha, a, b) with calibration
// lengths T uniform in [26, 78] units, and Gamma-Gamma(p, q, gamma) spend per
// repeat purchase.
func simulate(n int, seed uint64, r, alpha, a, b, p, q, g float64) []CLVCustomer {
	src := rand.New(rand.NewPCG(seed, seed+1))
	lam := distuv.Gamma{Alpha: r, Beta: alpha, Src: src}
	drop := distuv.Beta{Alpha: a, Beta: b, Src: src}
	nu := distuv.Gamma{Alpha: q, Beta: g, Src: src}
	out := make([]CLVCustomer, n)
	for i := range out {
		l, pd, v := lam.Rand(), drop.Rand(), nu.Rand()
		z := distuv.Gamma{Alpha: p, Beta: v, Src: src}
		T := 26 + 52*src.Float64()
		c := CLVCustomer{ID: fmt.Sprintf("s%05d", i), T: T}
		var t, sum float64
		for {
			t += src.ExpFloat64() / l
			if t > T {
				break
			}
			c.X++
			c.Tx = t
			sum += z.Rand()
			if src.Float64() < pd {
				break
			}
		}
		if c.X > 0 {
			c.Monetary = sum / c.X
		}
		out[i] = c
	}
	return out
}

// TestCLVRecoversParameters: fitting simulated customers recovers the
// parameters they were drawn from. Tolerance (8000 customers, fixed seed):
// r and alpha within 10 %, a and b within 20 % (the dropout parameters are
// the least identified, cf. the CDNOW standard errors in FHL 2005), the
// Gamma-Gamma mean spend γp/(q−1) within 5 % and p, q, γ within 15 %.
func TestCLVRecoversParameters(t *testing.T) {
	const r, alpha, a, b = 0.5, 6.0, 0.8, 2.5
	const p, q, g = 6.0, 4.0, 20.0
	cs := simulate(8000, 42, r, alpha, a, b, p, q, g)
	start := time.Now()
	m, err := FitBGNBD(cs)
	if err != nil {
		t.Fatal(err)
	}
	gg, err := FitGammaGamma(cs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit in %v: %+v %+v", time.Since(start), m, gg)
	within := func(name string, got, want, tol float64) {
		if math.Abs(got-want)/want > tol {
			t.Errorf("%s = %.4f, want %.4f ± %.0f %%", name, got, want, 100*tol)
		}
	}
	within("r", m.R, r, 0.10)
	within("alpha", m.Alpha, alpha, 0.10)
	within("a", m.A, a, 0.20)
	within("b", m.B, b, 0.20)
	within("gamma-gamma mean", gg.Gamma*gg.P/(gg.Q-1), g*p/(q-1), 0.05)
	within("p", gg.P, p, 0.15)
	within("q", gg.Q, q, 0.15)
	within("gamma", gg.Gamma, g, 0.15)

	// Predictions are consistent: expected purchases grow with the horizon,
	// P(alive) is a probability and is 1 without repeat purchases.
	for _, c := range cs[:50] {
		e1, e2 := m.ExpectedPurchases(4, c), m.ExpectedPurchases(52.18, c)
		pa := m.PAlive(c)
		if e1 < 0 || e2 < e1 || pa <= 0 || pa > 1 || (c.X == 0 && pa != 1) {
			t.Fatalf("customer %+v: E[X(4)] %v E[X(52.18)] %v P(alive) %v", c, e1, e2, pa)
		}
	}
}

// TestFitCLVFromStore: inputs come from orders (same-day purchases merged,
// the first excluded, cancelled left out), the horizon is converted to the
// unit (12 months = 52.18 weeks) and rows are written to customer_value.
func TestFitCLVFromStore(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	cs := simulate(300, 7, 0.5, 6, 0.8, 2.5, 6, 4, 20)
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	var vals []string
	for i, c := range cs {
		first := end.AddDate(0, 0, -int(math.Round(c.T*7)))
		vals = append(vals, fmt.Sprintf("('%s-0','%s','%s',10,'EUR','shop')", c.ID, c.ID, first.Add(10*time.Hour).Format(time.DateTime)))
		for k := 1; k <= int(c.X); k++ {
			// repeat purchases spread evenly up to t_x, one day apart at least
			d := first.AddDate(0, 0, int(math.Round(c.Tx*7*float64(k)/c.X)))
			if !d.After(first) {
				d = first.AddDate(0, 0, k)
			}
			vals = append(vals, fmt.Sprintf("('%s-%d','%s','%s',%.2f,'EUR','shop')", c.ID, k, c.ID, d.Add(11*time.Hour).Format(time.DateTime), c.Monetary))
		}
		if i == 0 {
			// Same day as the first purchase: merged, not a repeat purchase; a cancelled order is left out.
			vals = append(vals, fmt.Sprintf("('%s-x','%s','%s',5,'EUR','shop')", c.ID, c.ID, first.Add(15*time.Hour).Format(time.DateTime)))
		}
	}
	if err := st.Conn.Exec(ctx, "INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source) VALUES "+strings.Join(vals, ",")); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn.Exec(ctx, fmt.Sprintf("INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, source, status) VALUES ('zz','%s','%s',999,'EUR','shop','cancelled')", cs[1].ID, end.Add(-48*time.Hour).Format(time.DateTime))); err != nil {
		t.Fatal(err)
	}
	fit, err := FitCLV(ctx, st, CLVOptions{CalibrationEnd: end, Unit: "week", HorizonMonths: 12, Discount: 0.01, Write: true})
	if err != nil {
		t.Fatal(err)
	}
	if fit.Customers != 300 || fit.Written != 300 || math.Abs(fit.HorizonUnits-52.18) > 0.01 || fit.Currency != "EUR" {
		t.Fatalf("fit %+v", fit)
	}
	var n uint64
	var x0 float64
	if err := st.Conn.QueryRow(ctx, "SELECT count(), anyIf(x, customer_id = 's00000') FROM customer_value FINAL WHERE model = 'bgnbd_gg' AND as_of = '2026-06-30'").Scan(&n, &x0); err != nil {
		t.Fatal(err)
	}
	if n != 300 || x0 != cs[0].X {
		t.Errorf("customer_value: %d rows, x of s00000 %v, want 300 and %v", n, x0, cs[0].X)
	}
	// The parameters behind the snapshot, for carrying it forward.
	snap, err := NewCustomers(st).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Model == nil || *snap.Model != (BGNBD{R: fit.BGNBD.R, Alpha: fit.BGNBD.Alpha, A: fit.BGNBD.A, B: fit.BGNBD.B}) ||
		snap.Customers != 300 || snap.Unit != "week" || !snap.AsOf.Equal(end) {
		t.Errorf("snapshot %+v, want the fit's parameters %+v", snap, fit.BGNBD)
	}
	// The metric reading it.
	r, err := New(ctx, Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	pp, _ := r.ParseParams("clv_predicted", map[string][]string{"from": {"2026-06-01"}, "to": {"2026-06-30"}})
	res, err := r.Query(ctx, "clv_predicted", pp)
	if err != nil {
		t.Fatal(err)
	}
	if got := *res.Series[0].Total; math.Abs(got-fit.MeanCLV) > 1e-6*fit.MeanCLV {
		t.Errorf("clv_predicted = %v, want the fit's mean %v", got, fit.MeanCLV)
	}
	if _, err := FitCLV(ctx, st, CLVOptions{CalibrationEnd: end, Unit: "month"}); err == nil || !strings.Contains(err.Error(), "unit") {
		t.Errorf("unit month: %v", err)
	}
}
