// Package demo generates one coherent, deterministic company across every
// canonical entity, for demos and benchmarks: an online outdoor-gear retailer
// selling in EUR, acquiring customers through paid and organic channels.
//
// Behaviour is modelled so the KPIs have something true to find:
//   - new customers per day follow growth and seasonality (spring, Black
//     Friday, Christmas) and are bought with marketing spend at a per-channel
//     cost, so CAC and ROAS come out of the data;
//   - each customer buys as in BG/NBD: a purchase rate λ ~ Gamma(r, α) per
//     week and, after each purchase, a dropout probability p ~ Beta(a, b);
//     order values follow a per-customer mean (Gamma-Gamma-like);
//   - customers who will churn open more tickets, wait longer for answers and
//     give lower NPS and CSAT;
//   - email consent is granted at signup by most and withdrawn by some;
//     touchpoints (impressions, clicks, visits, signups, email opens and
//     clicks) precede and follow purchases;
//   - the CRM and the help desk know some customers under their own ids, with
//     the same email written differently or only a phone number, so identity
//     resolution has work to do.
//
// Records use the canonical field names of the ingest contract; times are
// RFC 3339 UTC, money has two decimals.
package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Size selects how much is generated.
type Size string

// Sizes.
const (
	Small  Size = "small"  // 2,000 customers: a dashboard with meaningful numbers in seconds
	Medium Size = "medium" // 50,000 customers
	Large  Size = "large"  // 1,000,000 customers, about 10M orders and 50M touchpoints: benchmarks
)

// ParseSize reads small, medium or large.
func ParseSize(s string) (Size, error) {
	switch Size(s) {
	case Small, Medium, Large:
		return Size(s), nil
	}
	return "", fmt.Errorf("size %q is not one of small, medium, large", s)
}

// Customers is the number of customers a size generates.
func (s Size) Customers() int {
	switch s {
	case Medium:
		return 50_000
	case Large:
		return 1_000_000
	}
	return 2_000
}

// Record is one record of a canonical entity: field name → value as text.
type Record map[string]string

// Sink receives generated records. source names the system the record
// comes from (shop, crm, helpdesk, ads, email, web, survey).
type Sink func(entity, source string, rec Record) error

// Config is what to generate.
type Config struct {
	Size   Size
	Seed   uint64    // same seed, size and end: the same records
	End    time.Time // last day of data (exclusive end is the day after); default today UTC
	Months int       // history length; default 36
}

// Stats counts what was generated per entity.
type Stats map[string]int

type channel struct {
	name      string
	share     float64  // of new customers
	cac       float64  // EUR of spend per new customer (0: organic)
	campaigns []string // paid or tracked campaigns
	cpc       float64  // EUR per click
	ctr       float64  // clicks per impression
}

var channels = []channel{
	{"paid_search", 0.28, 38, []string{"brand", "generic_outdoor", "shopping_feed"}, 0.62, 0.045},
	{"paid_social", 0.22, 47, []string{"prospecting", "retargeting", "lookalike"}, 0.48, 0.011},
	{"affiliate", 0.08, 24, []string{"partners", "cashback"}, 0.9, 0.02},
	{"email", 0.07, 0, []string{"newsletter", "winback"}, 0, 0},
	{"organic_search", 0.20, 0, []string{""}, 0, 0},
	{"referral", 0.07, 0, []string{"refer_a_friend"}, 0, 0},
	{"direct", 0.08, 0, []string{""}, 0, 0},
}

var countries = []struct {
	code string
	w    float64
}{{"DE", 0.34}, {"FR", 0.18}, {"NL", 0.12}, {"AT", 0.09}, {"BE", 0.08}, {"IT", 0.08}, {"ES", 0.06}, {"DK", 0.05}}

var products = []string{"tent", "sleeping_bag", "backpack", "jacket", "boots", "stove", "headlamp"}

// Generate emits the whole company to sink.
func Generate(cfg Config, sink Sink) (Stats, error) {
	if cfg.Size == "" {
		cfg.Size = Small
	}
	if cfg.Months <= 0 {
		cfg.Months = 36
	}
	if cfg.End.IsZero() {
		cfg.End = time.Now().UTC()
	}
	end := time.Date(cfg.End.Year(), cfg.End.Month(), cfg.End.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	start := end.AddDate(0, -cfg.Months, 0)
	days := int(end.Sub(start).Hours() / 24)
	g := &gen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x636f6e7665726765)), sink: sink, stats: Stats{}, start: start, end: end}

	// New customers per day and channel: growth, weekly rhythm, seasons.
	total := cfg.Size.Customers()
	weights := make([]float64, days)
	var wsum float64
	for d := range days {
		day := start.AddDate(0, 0, d)
		w := (1 + 0.8*float64(d)/float64(days)) * seasonality(day)
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			w *= 1.15
		}
		weights[d] = w
		wsum += w
	}
	perDay := make([][]int, days)
	assigned := 0
	for d := range days {
		perDay[d] = make([]int, len(channels))
		expected := float64(total) * weights[d] / wsum
		for c, ch := range channels {
			n := g.poisson(expected * ch.share)
			perDay[d][c] = n
			assigned += n
		}
	}
	// Marketing spend: what the paid channels cost, with a floor of
	// always-on brand spend, split over campaigns.
	for d := range days {
		day := start.AddDate(0, 0, d)
		for c, ch := range channels {
			if ch.cac == 0 {
				continue
			}
			budget := float64(perDay[d][c])*ch.cac*g.lognormal(0, 0.15) + 8*g.lognormal(0, 0.3)
			for i, camp := range ch.campaigns {
				share := 1.0 / float64(len(ch.campaigns))
				if i == 0 {
					share *= 1.4
				}
				spend := budget * share / 1.1333
				clicks := int(spend / ch.cpc * g.lognormal(0, 0.1))
				impr := int(float64(clicks) / ch.ctr * g.lognormal(0, 0.1))
				if err := g.emit("marketing_spend", "ads", Record{
					"date": day.Format("2006-01-02"), "channel": ch.name, "campaign": camp,
					"spend": money(spend), "currency": "EUR",
					"impressions": strconv.Itoa(impr), "clicks": strconv.Itoa(clicks),
				}); err != nil {
					return g.stats, err
				}
			}
		}
	}
	// Customers, day by day, each with their whole history.
	seq := 0
	for d := range days {
		day := start.AddDate(0, 0, d)
		for c := range channels {
			for range perDay[d][c] {
				seq++
				at := day.Add(time.Duration(g.rng.Int64N(int64(24 * time.Hour))))
				if err := g.customer(seq, c, at); err != nil {
					return g.stats, err
				}
			}
		}
	}
	// Visitors who never became customers: the top of the funnel.
	anon := assigned * 6
	for i := range anon {
		at := start.Add(time.Duration(g.rng.Int64N(int64(end.Sub(start)))))
		c := g.pickChannel()
		ch := channels[c]
		id := fmt.Sprintf("anon-%08d", i+1)
		camp := ch.campaigns[g.rng.IntN(len(ch.campaigns))]
		if ch.cac > 0 {
			if err := g.touch("", id, at.Add(-time.Minute), ch.name, camp, "click"); err != nil {
				return g.stats, err
			}
		}
		if err := g.touch("", id, at, ch.name, camp, "visit"); err != nil {
			return g.stats, err
		}
		if g.rng.Float64() < 0.12 {
			if err := g.touch("", id, at.Add(3*time.Minute), ch.name, camp, "signup"); err != nil {
				return g.stats, err
			}
		}
	}
	return g.stats, nil
}

type gen struct {
	cfg        Config
	rng        *rand.Rand
	sink       Sink
	stats      Stats
	start, end time.Time
	orderSeq   int
	eventSeq   int
	ticketSeq  int
	respSeq    int
	rewardSeq  int
}

func (g *gen) emit(entity, source string, r Record) error {
	g.stats[entity]++
	return g.sink(entity, source, r)
}

func (g *gen) touch(customer, anonymous string, at time.Time, ch, camp, kind string) error {
	if !at.Before(g.end) {
		return nil
	}
	g.eventSeq++
	return g.emit("touchpoints", "web", Record{
		"event_id": fmt.Sprintf("ev-%010d", g.eventSeq), "customer_id": customer, "anonymous_id": anonymous,
		"occurred_at": ts(at), "channel": ch, "campaign": camp, "kind": kind,
	})
}

func (g *gen) customer(n, c int, acquired time.Time) error {
	ch := channels[c]
	id := fmt.Sprintf("C%07d", n)
	camp := ch.campaigns[g.rng.IntN(len(ch.campaigns))]
	country := g.pickCountry()
	email := fmt.Sprintf("customer%d@example.%s", n, strings.ToLower(country))
	phone := fmt.Sprintf("+49 151 %04d %04d", n/10000%10000, n%10000)
	// Latent behaviour (BG/NBD and Gamma-Gamma-like).
	lambda := g.gamma(1.2, 1/5.0) // purchases per week (mean 0.24)
	p := g.beta(1, 12)            // dropout after each purchase (mean 0.077)
	meanSpend := 28 + g.gamma(3, 22)
	segment := "consumer"
	if g.rng.Float64() < 0.06 {
		segment = "club"
		lambda *= 1.6
	}
	anonID := fmt.Sprintf("web-%08d", n)
	// Touchpoints before the first order: ad impression/click, visits, signup.
	if ch.cac > 0 {
		for k := range 1 + g.rng.IntN(4) {
			if err := g.touch(id, anonID, acquired.Add(-time.Duration(72-k*12)*time.Hour), ch.name, camp, "impression"); err != nil {
				return err
			}
		}
		if err := g.touch(id, anonID, acquired.Add(-40*time.Minute), ch.name, camp, "click"); err != nil {
			return err
		}
	}
	if err := g.touch(id, anonID, acquired.Add(-35*time.Minute), ch.name, camp, "visit"); err != nil {
		return err
	}
	if err := g.touch(id, anonID, acquired.Add(-20*time.Minute), ch.name, camp, "signup"); err != nil {
		return err
	}
	if err := g.emit("customers", "shop", Record{
		"customer_id": id, "email": email, "phone": phone, "first_seen_at": ts(acquired.Add(-35 * time.Minute)),
		"acquisition_channel": ch.name, "acquisition_campaign": camp, "country": country, "segment": segment,
	}); err != nil {
		return err
	}
	// The CRM knows a third of them under its own id, email written differently.
	if g.rng.Float64() < 0.33 {
		if err := g.emit("customers", "crm", Record{
			"customer_id": fmt.Sprintf("crm-%d", 500000+n), "email": "  " + strings.ToUpper(email[:1]) + email[1:] + " ",
			"first_seen_at": ts(acquired), "country": country, "segment": segment,
		}); err != nil {
			return err
		}
	}
	// Consents: email marketing at signup for most, sms for some; later changes.
	emailConsent := g.rng.Float64() < 0.72
	if err := g.consent(id, "email", "marketing", emailConsent, "shop", acquired); err != nil {
		return err
	}
	if err := g.consent(id, "sms", "marketing", g.rng.Float64() < 0.28, "shop", acquired); err != nil {
		return err
	}
	if emailConsent && g.rng.Float64() < 0.15 {
		if err := g.consent(id, "email", "marketing", false, "email", acquired.Add(time.Duration(g.rng.Int64N(int64(g.end.Sub(acquired))+1)))); err != nil {
			return err
		}
	}

	// Purchases: the first at acquisition, repeats as a Poisson process
	// until the customer drops out.
	at := acquired
	alive := true
	churned := false
	orders := 0
	var lastOrder time.Time
	for alive && at.Before(g.end) {
		orders++
		lastOrder = at
		if orders > 1 { // a browsing visit the day before and a visit right before every repeat order
			if err := g.touch(id, anonID, at.Add(-26*time.Hour), "direct", "", "visit"); err != nil {
				return err
			}
			if err := g.touch(id, anonID, at.Add(-15*time.Minute), "direct", "", "visit"); err != nil {
				return err
			}
		}
		if err := g.order(id, at, meanSpend, orders == 1, ch.name, camp, country); err != nil {
			return err
		}
		if g.rng.Float64() < p {
			alive = false
			churned = true
			break
		}
		weeks := g.exp(lambda)
		if weeks > 200 {
			break
		}
		at = at.Add(time.Duration(weeks * float64(7*24*time.Hour)))
	}
	// Email engagement while consented and alive.
	if emailConsent {
		active := g.end
		if churned {
			active = lastOrder.AddDate(0, 2, 0)
		}
		for t := acquired.AddDate(0, 0, 7+g.rng.IntN(7)); t.Before(active) && t.Before(g.end); t = t.AddDate(0, 0, 7) {
			if g.rng.Float64() < 0.35 {
				if err := g.touch(id, "", t, "email", "newsletter", "open"); err != nil {
					return err
				}
				if g.rng.Float64() < 0.25 {
					if err := g.touch(id, "", t.Add(2*time.Minute), "email", "newsletter", "click"); err != nil {
						return err
					}
				}
			}
		}
	}
	// Service: churners open more tickets and wait longer.
	helpdeskKnown := false
	tickets := g.poisson(0.15*float64(orders) + map[bool]float64{true: 0.6, false: 0.1}[churned])
	for range tickets {
		opened := acquired.Add(time.Duration(g.rng.Int64N(int64(lastOrder.Sub(acquired)) + int64(14*24*time.Hour))))
		if !opened.Before(g.end) {
			continue
		}
		slow := 1.0
		if churned {
			slow = 3.0
		}
		first := opened.Add(time.Duration(g.exp(1/(2*slow)) * float64(time.Hour)))
		resolved := first.Add(time.Duration(g.exp(1/(20*slow)) * float64(time.Hour)))
		csat := 5 - g.rng.IntN(2)
		if churned {
			csat = 1 + g.rng.IntN(3)
		}
		g.ticketSeq++
		rec := Record{"ticket_id": fmt.Sprintf("T%08d", g.ticketSeq), "customer_id": id, "opened_at": ts(opened),
			"channel": []string{"email", "chat", "phone"}[g.rng.IntN(3)], "status": "solved",
			"first_response_at": ts(first), "resolved_at": ts(resolved), "csat": strconv.Itoa(csat)}
		source := "shop"
		// The help desk knows some customers only under its own id, with
		// their phone number written its own way.
		if g.rng.Float64() < 0.2 {
			source = "helpdesk"
			rec["customer_id"] = fmt.Sprintf("hd-%d", n)
			if !helpdeskKnown {
				helpdeskKnown = true
				if err := g.emit("customers", "helpdesk", Record{"customer_id": rec["customer_id"],
					"phone": "0049" + strings.ReplaceAll(strings.TrimPrefix(phone, "+49"), " ", ""), "country": country}); err != nil {
					return err
				}
			}
		}
		if !resolved.Before(g.end) {
			rec["status"], rec["resolved_at"], rec["csat"] = "open", "", ""
		}
		if err := g.emit("tickets", source, rec); err != nil {
			return err
		}
		if rec["csat"] != "" {
			g.respSeq++
			if err := g.emit("survey_responses", "survey", Record{"response_id": fmt.Sprintf("R%08d", g.respSeq), "customer_id": id,
				"answered_at": rec["resolved_at"], "kind": "csat", "score": rec["csat"], "topic": "support", "channel": rec["channel"]}); err != nil {
				return err
			}
		}
	}
	// NPS: a quarter answer, detractors among those who will leave.
	if g.rng.Float64() < 0.25 {
		answered := acquired.AddDate(0, 1, g.rng.IntN(30))
		if answered.Before(g.end) {
			score := 9 + g.rng.IntN(2)
			switch r := g.rng.Float64(); {
			case churned && r < 0.55:
				score = g.rng.IntN(7)
			case churned || r < 0.25:
				score = 7 + g.rng.IntN(2)
			}
			g.respSeq++
			if err := g.emit("survey_responses", "survey", Record{"response_id": fmt.Sprintf("R%08d", g.respSeq), "customer_id": id,
				"answered_at": ts(answered), "kind": "nps", "score": strconv.Itoa(score), "topic": "brand", "channel": "email"}); err != nil {
				return err
			}
		}
	}
	// Rewards: club members get a voucher most months; others a birthday gift.
	if segment == "club" {
		for t := acquired.AddDate(0, 1, 0); t.Before(g.end); t = t.AddDate(0, 1, 0) {
			if g.rng.Float64() < 0.7 {
				if err := g.reward(id, t, "voucher", 5); err != nil {
					return err
				}
			}
		}
	} else if g.rng.Float64() < 0.1 {
		if err := g.reward(id, acquired.AddDate(0, 0, 30+g.rng.IntN(300)), "gift", 10); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) order(customer string, at time.Time, mean float64, first bool, ch, camp, country string) error {
	g.orderSeq++
	revenue := mean * g.gamma(6, 1/6.0)
	if seasonality(at) > 1.5 {
		revenue *= 1.2
	}
	cost := revenue * (0.52 + 0.1*g.rng.Float64())
	rec := Record{"order_id": fmt.Sprintf("O%09d", g.orderSeq), "customer_id": customer, "ordered_at": ts(at),
		"revenue": money(revenue), "currency": "EUR", "cost": money(cost), "refund": "0.00", "status": "completed",
		"country": country}
	if first {
		rec["channel"], rec["campaign"] = ch, camp
	} else if g.rng.Float64() < 0.3 {
		rec["channel"], rec["campaign"] = "email", "newsletter"
	} else {
		rec["channel"] = "direct"
	}
	if r := g.rng.Float64(); r < 0.03 {
		rec["refund"], rec["status"] = rec["revenue"], "refunded"
	} else if r < 0.06 {
		rec["refund"] = money(revenue * 0.4)
	}
	return g.emit("orders", "shop", rec)
}

func (g *gen) consent(customer, ch, purpose string, granted bool, source string, at time.Time) error {
	if !at.Before(g.end) {
		return nil
	}
	return g.emit("consents", source, Record{"customer_id": customer, "channel": ch, "purpose": purpose,
		"granted": strconv.FormatBool(granted), "source_system": source, "recorded_at": ts(at)})
}

func (g *gen) reward(customer string, at time.Time, kind string, amount float64) error {
	if !at.Before(g.end) {
		return nil
	}
	g.rewardSeq++
	return g.emit("rewards", "shop", Record{"reward_id": fmt.Sprintf("W%08d", g.rewardSeq), "customer_id": customer,
		"granted_at": ts(at), "kind": kind, "amount": money(amount), "currency": "EUR"})
}

// seasonality is a multiplier of demand on a day: spring, Black Friday week, December.
func seasonality(d time.Time) float64 {
	m := 1 + 0.25*math.Sin(2*math.Pi*(float64(d.YearDay())-80)/365)
	switch {
	case d.Month() == time.November && d.Day() >= 22:
		m *= 2.2
	case d.Month() == time.December && d.Day() <= 20:
		m *= 1.7
	case d.Month() == time.January && d.Day() <= 10:
		m *= 0.7
	}
	return m
}

func (g *gen) pickChannel() int {
	r := g.rng.Float64()
	for i, c := range channels {
		if r < c.share {
			return i
		}
		r -= c.share
	}
	return len(channels) - 1
}

func (g *gen) pickCountry() string {
	r := g.rng.Float64()
	for _, c := range countries {
		if r < c.w {
			return c.code
		}
		r -= c.w
	}
	return countries[0].code
}

func (g *gen) exp(rate float64) float64 { return g.rng.ExpFloat64() / rate }

func (g *gen) lognormal(mu, sigma float64) float64 { return math.Exp(mu + sigma*g.rng.NormFloat64()) }

func (g *gen) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*g.rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// gamma draws from Gamma(shape, scale) (Marsaglia and Tsang).
func (g *gen) gamma(shape, scale float64) float64 {
	if shape < 1 {
		return g.gamma(shape+1, scale) * math.Pow(g.rng.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := g.rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := g.rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v * scale
		}
	}
}

func (g *gen) beta(a, b float64) float64 {
	x := g.gamma(a, 1)
	return x / (x + g.gamma(b, 1))
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func money(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', 2, 64) }
