package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

// catalogOrders is a canonical orders file of source shop with every kind of bad row:
// read 9, loaded 2 (o1, o6), 1 duplicate (line 7), 6 rejected.
const catalogOrders = ordersHeader +
	"o1,c1,2026-03-01 10:00:00,10.50,EUR\n" + // 2 ok
	"o2,c2,2026-13-45 10:00,3,EUR\n" + // 3 bad_time ordered_at
	"o3,c3,2026-03-02,ten,EUR\n" + // 4 bad_number revenue
	"o4,c4,2026-03-02,5,\n" + // 5 missing_field currency
	"o5,c5,2026-03-03,7,EUR,extra\n" + // 6 field_count
	"o1,c1,2026-03-01 10:00:00,10.50,EUR\n" + // 7 duplicate of line 2
	"o1,c1,2026-03-01 10:00:00,11,EUR\n" + // 8 conflicting_duplicate order_id
	"o6,c6,2026-03-04,20,EUR\n" + // 9 ok
	"<b>o7</b>,c7,soon,1,EUR\n" // 10 bad_time ordered_at

// catalogFixture loads, in this order: the orders file twice (source shop; the second run
// finds only duplicates and the same rejects), two customers (source crm), an empty
// touchpoints file (source web: the run fails) and the Online Retail sample (a lines-mode
// orders run that also writes order_lines and refunds). It returns the run ids in load order.
func catalogFixture(t *testing.T) (*warehouse.Store, []string, string) {
	t.Helper()
	st := whtest.Store(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	orders := write("orders.csv", catalogOrders)
	var ids []string
	for range 2 {
		sum := load(t, st, orders, ingest.Options{Entity: "orders", Source: "shop"})
		if sum.Rejected != 6 {
			t.Fatalf("orders: rejected %d, want 6: %v", sum.Rejected, sum.Rejects)
		}
		ids = append(ids, sum.RunID)
	}
	ids = append(ids, load(t, st, write("customers.csv", "customer_id,email\ncrm-1,a@example.com\ncrm-2,b@example.com\n"),
		ingest.Options{Entity: "customers", Source: "crm"}).RunID)
	sum, err := ingest.LoadFile(context.Background(), st, write("touchpoints.csv", ""), ingest.Options{Entity: "touchpoints", Source: "web"}, nil)
	if err == nil || sum.Status != ingest.StatusFailed {
		t.Fatalf("empty file: status %s, err %v; want a failed run", sum.Status, err)
	}
	ids = append(ids, sum.RunID)
	ids = append(ids, load(t, st, "testdata/online_retail.csv", ingest.Options{Mapping: preset(t, "online_retail"), Preset: "online_retail"}).RunID)
	return st, ids, orders
}

func TestCatalogSources(t *testing.T) {
	st, _, _ := catalogFixture(t)
	cat := ingest.NewCatalog(st)
	before := time.Now()
	rep, err := cat.Sources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.AsOf.Before(before) {
		t.Errorf("as of %v, before the call", rep.AsOf)
	}
	type row struct {
		source, entity     string
		rows, runs, reject int64
		status             string
		also               string
		succeeded          bool
	}
	want := []row{
		{"crm", "customers", 2, 1, 0, "succeeded", "", true},
		{"online_retail", "orders", 9, 1, 0, "succeeded", "order_lines=86 refunds=1", true},
		{"shop", "orders", 2, 2, 12, "succeeded", "", true},
		{"web", "touchpoints", 0, 1, 0, "failed", "", false},
	}
	var got []row
	for _, s := range rep.Sources {
		var also []string
		for _, a := range s.Also {
			also = append(also, a.Table+"="+itoa(a.Rows))
		}
		got = append(got, row{s.Source, s.Entity, s.Rows, s.Runs, s.Rejected, s.LastStatus, strings.Join(also, " "), !s.LastSuccess.IsZero()})
		if s.LastRun.IsZero() || s.LastRun.After(rep.AsOf) {
			t.Errorf("%s/%s: last run %v (as of %v)", s.Source, s.Entity, s.LastRun, rep.AsOf)
		}
		if !s.LastSuccess.IsZero() && (s.LastSuccess.Before(s.LastRun) || s.LastSuccess.After(rep.AsOf)) {
			t.Errorf("%s/%s: last success %v, last run %v, as of %v", s.Source, s.Entity, s.LastSuccess, s.LastRun, rep.AsOf)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("sources\n got %+v\nwant %+v", got, want)
	}
}

func TestCatalogRuns(t *testing.T) {
	st, ids, orders := catalogFixture(t)
	cat := ingest.NewCatalog(st)
	shop1, shop2, crm, web, retail := ids[0], ids[1], ids[2], ids[3], ids[4]
	cases := []struct {
		name          string
		f             ingest.RunFilter
		offset, limit int
		total         int64
		want          []string
	}{
		{"all, newest first", ingest.RunFilter{}, 0, 50, 5, []string{retail, web, crm, shop2, shop1}},
		{"second page", ingest.RunFilter{}, 2, 2, 5, []string{crm, shop2}},
		{"last page, short", ingest.RunFilter{}, 4, 2, 5, []string{shop1}},
		{"past the end", ingest.RunFilter{}, 5, 2, 5, nil},
		{"by source", ingest.RunFilter{Source: "shop"}, 0, 50, 2, []string{shop2, shop1}},
		{"by entity", ingest.RunFilter{Entity: "orders"}, 0, 50, 3, []string{retail, shop2, shop1}},
		{"by status", ingest.RunFilter{Status: ingest.StatusFailed}, 0, 50, 1, []string{web}},
		{"all three", ingest.RunFilter{Source: "shop", Entity: "orders", Status: ingest.StatusSucceeded}, 0, 50, 2, []string{shop2, shop1}},
		{"no match", ingest.RunFilter{Source: "crm", Entity: "orders"}, 0, 50, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := cat.Runs(context.Background(), c.f, c.offset, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range list.Runs {
				got = append(got, r.ID)
			}
			if list.Total != c.total || !slices.Equal(got, c.want) {
				t.Errorf("total %d runs %v, want %d %v", list.Total, got, c.total, c.want)
			}
		})
	}

	list, err := cat.Runs(context.Background(), ingest.RunFilter{}, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]ingest.Run{}
	for _, r := range list.Runs {
		byID[r.ID] = r
	}
	r := byID[shop2]
	if r.Source != "shop" || r.Origin != orders || r.Entity != "orders" || r.Status != "succeeded" ||
		r.Read != 9 || r.Loaded != 0 || r.Rejected != 6 || r.Duplicates != 3 || r.Bytes != int64(len(catalogOrders)) {
		t.Errorf("second orders run %+v", r)
	}
	if r.Duration() <= 0 || r.FinishedAt.Before(r.StartedAt) {
		t.Errorf("duration %v (started %v, finished %v)", r.Duration(), r.StartedAt, r.FinishedAt)
	}
	if r := byID[shop1]; r.Read != 9 || r.Loaded != 2 || r.Duplicates != 1 || r.Rejected != 6 {
		t.Errorf("first orders run %+v", r)
	}
	if r := byID[web]; r.Status != "failed" || !strings.Contains(r.Error, "empty") || r.Source != "web" {
		t.Errorf("failed run %+v", r)
	}
	if r := byID[retail]; r.Source != "online_retail" || r.Preset != "online_retail" || r.Loaded != 86 {
		t.Errorf("online retail run %+v", r)
	}
}

func TestCatalogQuarantine(t *testing.T) {
	st, ids, orders := catalogFixture(t)
	cat := ingest.NewCatalog(st)
	shop1, shop2 := ids[0], ids[1]
	type rec struct {
		run   string
		line  int64
		field string
		code  string
	}
	one := func(run string) []rec {
		return []rec{{run, 3, "ordered_at", "bad_time"}, {run, 4, "revenue", "bad_number"}, {run, 5, "currency", "missing_field"},
			{run, 6, "", "field_count"}, {run, 8, "order_id", "conflicting_duplicate"}, {run, 10, "ordered_at", "bad_time"}}
	}
	cases := []struct {
		name          string
		f             ingest.QuarantineFilter
		offset, limit int
		total         int64
		want          []rec
	}{
		{"one run in source order", ingest.QuarantineFilter{Run: shop1}, 0, 50, 6, one(shop1)},
		{"newest run first", ingest.QuarantineFilter{}, 0, 50, 12, append(one(shop2), one(shop1)...)},
		{"page across runs", ingest.QuarantineFilter{}, 4, 4, 12, []rec{one(shop2)[4], one(shop2)[5], one(shop1)[0], one(shop1)[1]}},
		{"past the end", ingest.QuarantineFilter{}, 12, 4, 12, nil},
		{"by code", ingest.QuarantineFilter{Code: "bad_time"}, 0, 50, 4, []rec{one(shop2)[0], one(shop2)[5], one(shop1)[0], one(shop1)[5]}},
		{"by source and entity", ingest.QuarantineFilter{Source: "shop", Entity: "orders", Run: shop2, Code: "field_count"}, 0, 50, 1, []rec{one(shop2)[3]}},
		{"other entity", ingest.QuarantineFilter{Entity: "customers"}, 0, 50, 0, nil},
		{"other source", ingest.QuarantineFilter{Source: "crm"}, 0, 50, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := cat.Quarantine(context.Background(), c.f, c.offset, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []rec
			for _, r := range list.Records {
				got = append(got, rec{r.RunID, r.Line, r.Field, r.Code})
			}
			if list.Total != c.total || !slices.Equal(got, c.want) {
				t.Errorf("total %d\n got %v\nwant %d %v", list.Total, got, c.total, c.want)
			}
		})
	}

	list, err := cat.Quarantine(context.Background(), ingest.QuarantineFilter{Run: shop1, Code: "bad_time"}, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Records) != 2 {
		t.Fatalf("bad_time records of the first run: %+v", list.Records)
	}
	r := list.Records[1]
	if r.Raw != "<b>o7</b>,c7,soon,1,EUR" || r.File != orders || r.Source != "shop" || r.Entity != "orders" ||
		!strings.Contains(r.Reason, `"soon" is not a time`) || r.At.IsZero() {
		t.Errorf("line 10 record %+v", r)
	}

	reasons, err := cat.QuarantineReasons(context.Background(), ingest.QuarantineFilter{Code: "bad_time"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reasons {
		got = append(got, r.Code+"="+itoa(r.Records))
		if r.Example == "" {
			t.Errorf("%s: no example reason", r.Code)
		}
	}
	want := []string{"bad_time=4", "bad_number=2", "conflicting_duplicate=2", "field_count=2", "missing_field=2"}
	if !slices.Equal(got, want) {
		t.Errorf("reasons (the code filter is ignored) %v, want %v", got, want)
	}
	reasons, err = cat.QuarantineReasons(context.Background(), ingest.QuarantineFilter{Entity: "customers"})
	if err != nil || len(reasons) != 0 {
		t.Errorf("reasons of customers: %v %v", reasons, err)
	}
}

// TestCatalogCoversEntities: the rows-per-source query has a branch for every canonical
// entity, so a new entity cannot be left out of the data page silently.
func TestCatalogCoversEntities(t *testing.T) {
	b, err := os.ReadFile("queries/sources_stored.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ingest.EntityNames() {
		re := regexp.MustCompile(`SELECT '` + e + `' AS entity, .* FROM ` + e + ` FINAL GROUP BY source`)
		if !re.Match(b) {
			t.Errorf("sources_stored.sql has no branch for entity %s", e)
		}
	}
}

// TestRecordSourceBackfill: runs recorded before ingest_runs had record_source get it from
// their keys or quarantined records (migration 0020).
func TestRecordSourceBackfill(t *testing.T) {
	st, ids, _ := catalogFixture(t)
	ctx := context.Background()
	if err := st.Conn.Exec(ctx, "ALTER TABLE ingest_runs UPDATE record_source = '' WHERE 1 SETTINGS mutations_sync = 2"); err != nil {
		t.Fatal(err)
	}
	ms, err := warehouse.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m warehouse.Migration) bool { return m.Name == "ingest_runs_record_source_backfill" })
	if i < 0 {
		t.Fatal("no backfill migration")
	}
	if err := st.Conn.Exec(ctx, ms[i].SQL); err != nil {
		t.Fatal(err)
	}
	list, err := ingest.NewCatalog(st).Runs(ctx, ingest.RunFilter{}, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ids[0]: "shop", ids[1]: "shop", ids[2]: "crm", ids[3]: "", ids[4]: "online_retail"}
	for _, r := range list.Runs {
		if r.Source != want[r.ID] {
			t.Errorf("run %s (%s): record source %q, want %q", r.ID, r.Entity, r.Source, want[r.ID])
		}
	}
	if list.Total != 5 {
		t.Errorf("%d runs after the backfill, want 5 (one row per run)", list.Total)
	}
}
