package demo

import (
	"reflect"
	"strconv"
	"testing"
	"time"
)

var end = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

func collect(t *testing.T, cfg Config) (Stats, map[string][]Record) {
	t.Helper()
	recs := map[string][]Record{}
	st, err := Generate(cfg, func(entity, source string, r Record) error {
		r["_source"] = source
		recs[entity] = append(recs[entity], r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, recs
}

func TestDeterministic(t *testing.T) {
	a, ra := collect(t, Config{Size: Small, Seed: 7, End: end})
	b, rb := collect(t, Config{Size: Small, Seed: 7, End: end})
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ra["orders"][:50], rb["orders"][:50]) {
		t.Fatal("same seed gave different data")
	}
	c, _ := collect(t, Config{Size: Small, Seed: 8, End: end})
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same counts")
	}
}

func TestCoherent(t *testing.T) {
	st, recs := collect(t, Config{Size: Small, Seed: 1, End: end})
	shop := 0
	for _, c := range recs["customers"] {
		if c["_source"] == "shop" {
			shop++
		}
	}
	if shop < 1800 || shop > 2200 {
		t.Errorf("%d shop customers, want about 2,000", shop)
	}
	if st["customers"] <= shop {
		t.Error("no duplicate identities from the CRM")
	}
	perCustomer := float64(st["orders"]) / float64(shop)
	if perCustomer < 2 || perCustomer > 15 {
		t.Errorf("%.1f orders per customer", perCustomer)
	}
	for _, e := range []string{"orders", "customers", "marketing_spend", "touchpoints", "tickets", "survey_responses", "consents", "rewards"} {
		if st[e] == 0 {
			t.Errorf("no %s", e)
		}
	}
	// Orders fall inside the window; required fields are present.
	start := end.AddDate(0, -36, 0)
	for _, o := range recs["orders"] {
		at, err := time.Parse(time.RFC3339, o["ordered_at"])
		if err != nil || at.Before(start) || !at.Before(end.AddDate(0, 0, 1)) {
			t.Fatalf("order %v outside the window", o)
		}
		if v, err := strconv.ParseFloat(o["revenue"], 64); err != nil || v <= 0 || o["currency"] != "EUR" {
			t.Fatalf("bad order %v", o)
		}
	}
	// Paid channels have spend; blended CAC is plausible.
	var spend float64
	for _, s := range recs["marketing_spend"] {
		v, _ := strconv.ParseFloat(s["spend"], 64)
		spend += v
	}
	if cac := spend / float64(shop); cac < 10 || cac > 60 {
		t.Errorf("blended CAC %.2f EUR", cac)
	}
	// NPS of customers: detractors exist and so do promoters.
	det, pro := 0, 0
	for _, r := range recs["survey_responses"] {
		if r["kind"] != "nps" {
			continue
		}
		s, _ := strconv.Atoi(r["score"])
		if s <= 6 {
			det++
		} else if s >= 9 {
			pro++
		}
	}
	if det == 0 || pro <= det {
		t.Errorf("NPS answers: %d detractors, %d promoters", det, pro)
	}
}

func TestParseSize(t *testing.T) {
	if _, err := ParseSize("huge"); err == nil {
		t.Fatal("huge accepted")
	}
	if s, err := ParseSize("large"); err != nil || s.Customers() != 1_000_000 {
		t.Fatal(s, err)
	}
}
