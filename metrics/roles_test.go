package metrics

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestRolesHeader(t *testing.T) {
	d, err := Parse("f.sql", []byte(strings.Replace(goodHead, "-- kind:", "-- roles: Finance, admin, finance\n-- kind:", 1)+"SELECT 1"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Roles, []string{"finance", "admin"}) {
		t.Fatalf("roles %v", d.Roles)
	}
	for _, tc := range []struct {
		roles string
		want  string
	}{
		{"finance, viewer", `role "viewer" is not one of executive, finance, analyst, admin`},
		{"", "roles: empty"},
		{"public", `role "public" is not one of`},
	} {
		src := strings.Replace(goodHead, "-- kind:", "-- roles: "+tc.roles+"\n-- kind:", 1) + "SELECT 1"
		_, err := Parse("f.sql", []byte(src))
		e, ok := err.(*Error)
		if !ok || e.Line != 7 || !strings.Contains(e.Reason, tc.want) {
			t.Errorf("roles %q: %v, want line 7 and %q", tc.roles, err, tc.want)
		}
	}
}

// A derived metric shows no more than its inputs: its roles are narrowed by theirs.
func TestRegistryRoles(t *testing.T) {
	dir := t.TempDir()
	simple := func(name, roles string) string {
		h := strings.Replace(goodHead, "big_orders", name, 1)
		if roles != "" {
			h += "-- roles: " + roles + "\n"
		}
		return h + "SELECT * FROM orders FINAL"
	}
	ratio := func(name, formula, roles string) string {
		h := "-- name: " + name + "\n-- title: T\n-- description: d\n-- owner: CFO\n-- unit: ratio\n-- polarity: neutral\n-- kind: ratio\n-- formula: " + formula + "\n"
		if roles != "" {
			h += "-- roles: " + roles + "\n"
		}
		return h
	}
	writeFile(t, dir, "open.sql", simple("open_m", ""))
	writeFile(t, dir, "fin.sql", simple("fin_m", "finance"))
	writeFile(t, dir, "ana.sql", simple("ana_m", "analyst, finance"))
	writeFile(t, dir, "r1.sql", ratio("r_open", "open_m / open_m", ""))
	writeFile(t, dir, "r2.sql", ratio("r_fin", "open_m / fin_m", ""))
	writeFile(t, dir, "r3.sql", ratio("r_both", "ana_m / fin_m", "finance, executive"))
	writeFile(t, dir, "r4.sql", ratio("r_none", "ana_m / open_m", "executive"))
	writeFile(t, dir, "r5.sql", ratio("r_deep", "r_fin * 2", ""))
	reg, err := New(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if errs := reg.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	for name, want := range map[string][]string{
		"open_m": nil, "r_open": nil, "revenue_gross": nil,
		"fin_m":  {"finance", "admin"},
		"ana_m":  {"analyst", "finance", "admin"},
		"r_fin":  {"finance", "admin"},
		"r_both": {"finance", "admin"},
		"r_none": {"admin"},
		"r_deep": {"finance", "admin"},
	} {
		if got := reg.Roles(name); !slices.Equal(got, want) {
			t.Errorf("Roles(%s) = %v, want %v", name, got, want)
		}
	}
}
