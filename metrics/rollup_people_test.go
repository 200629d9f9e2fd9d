package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
)

// peopleRows is every person's row as rollup_people keeps it, computed from
// all their touchpoints (the rollup's definition, sql/rollups/people_build).
const peopleRows = `
SELECT person, min(occurred_at) AS first_touch,
       argMin(tuple(toString(source), event_id, toString(channel)), (occurred_at, event_id)) AS fe,
       if(countIf(kind = 'signup') > 0, minIf(occurred_at, kind = 'signup'), toDateTime64('2199-12-31 23:59:59', 3, 'UTC')) AS first_signup,
       argMinIf(tuple(toString(source), event_id), (occurred_at, event_id), kind = 'signup') AS se
FROM (SELECT if(customer_id != '', customer_id, concat('anon:', anonymous_id)) AS person, * FROM touchpoints_resolved)
GROUP BY person`

// keptPeople is the rollup's rows in the same shape.
const keptPeople = `
SELECT person, first_touch, tuple(toString(first_source), first_event, toString(first_channel)) AS fe, first_signup,
       tuple(toString(signup_source), signup_event) AS se
FROM rollup_people FINAL WHERE _deleted = 0 SETTINGS do_not_merge_across_partitions_select_final = 1`

// peopleDiff lists (up to 10) the people whose kept row differs from their
// touchpoints' ("" when every row is the same).
func peopleDiff(t *testing.T, st *warehouse.Store) string {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Conn.Query(ctx, `SELECT 'raw', toString(tuple(*)) FROM (`+peopleRows+` EXCEPT `+keptPeople+`)
		UNION ALL SELECT 'rollup', toString(tuple(*)) FROM (`+keptPeople+` EXCEPT `+peopleRows+`) ORDER BY 2, 1 LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var diff []string
	for rows.Next() {
		var side, row string
		if err := rows.Scan(&side, &row); err != nil {
			t.Fatal(err)
		}
		diff = append(diff, side+" only: "+row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(diff, "; ")
}

// resendTouchpoints writes touchpoints that change people's first touch or
// signup in every way a fold-in cannot follow by itself, plus new ones: a
// customer's first touchpoint re-sent as another customer's, a first signup
// re-sent as a visit, a customer's first touchpoint re-sent on another
// channel, an anonymous visitor's first touch re-sent identified,
// a touch weeks before a customer's first (an earlier month), and a new
// visitor.
func resendTouchpoints(t *testing.T, st *warehouse.Store) {
	t.Helper()
	ctx := context.Background()
	const cols = "event_id, customer_id, anonymous_id, occurred_at, channel, campaign, kind, source, loaded_at"
	firstOf := func(where, by string, offset int) string {
		return fmt.Sprintf(`(source, event_id) IN (SELECT argMin((source, event_id), (occurred_at, event_id)) FROM touchpoints FINAL
			WHERE %s GROUP BY %s ORDER BY %s LIMIT 1 OFFSET %d)`, where, by, by, offset)
	}
	stmts := []string{
		`INSERT INTO touchpoints (` + cols + `) SELECT event_id, 'c-took-first', anonymous_id, occurred_at, channel, campaign, kind, source, now64(3) + 60
		 FROM touchpoints FINAL WHERE ` + firstOf("customer_id != ''", "customer_id", 3),
		`INSERT INTO touchpoints (` + cols + `) SELECT event_id, customer_id, anonymous_id, occurred_at, channel, campaign, 'visit', source, now64(3) + 60
		 FROM touchpoints FINAL WHERE ` + firstOf("customer_id != '' AND kind = 'signup'", "customer_id", 5),
		`INSERT INTO touchpoints (` + cols + `) SELECT event_id, customer_id, anonymous_id, occurred_at, if(channel = 'referral', 'email', 'referral'), campaign, kind, source, now64(3) + 60
		 FROM touchpoints FINAL WHERE ` + firstOf("customer_id != ''", "customer_id", 9),
		`INSERT INTO touchpoints (` + cols + `) SELECT event_id, 'c-identified', anonymous_id, occurred_at, channel, campaign, kind, source, now64(3) + 60
		 FROM touchpoints FINAL WHERE ` + firstOf("customer_id = '' AND anonymous_id != ''", "anonymous_id", 0),
		`INSERT INTO touchpoints (` + cols + `) SELECT 'early-tp1', customer_id, '', min(occurred_at) - toIntervalDay(40), 'social', '', 'visit', 'web', now64(3)
		 FROM touchpoints FINAL WHERE customer_id != '' GROUP BY customer_id ORDER BY customer_id LIMIT 1 OFFSET 7`,
		`INSERT INTO touchpoints (` + cols + `) VALUES ('new-tp1', '', 'anon-new', '2025-05-05 05:05:05', 'email', '', 'signup', 'web', now64(3))`,
	}
	for _, q := range stmts {
		if err := st.Conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, "\n", 2)[0], err)
		}
	}
}

// mergeIdentities makes two customers with touchpoints one: the second's
// touchpoints' source id now resolves to the first.
func mergeIdentities(t *testing.T, st *warehouse.Store) {
	t.Helper()
	ctx := context.Background()
	var a, b, src string
	if err := st.Conn.QueryRow(ctx, `SELECT ids[1].1, ids[2].1, ids[2].2 FROM (SELECT groupArray((customer_id, source)) AS ids FROM (
		SELECT DISTINCT customer_id, toString(source) AS source FROM touchpoints WHERE customer_id != ''
		ORDER BY customer_id LIMIT 2 OFFSET 10))`).Scan(&a, &b, &src); err != nil || a == "" || b == "" {
		t.Fatalf("two customers with touchpoints: %q %q %v", a, b, err)
	}
	if err := st.Conn.Exec(ctx, `INSERT INTO identities (source, source_key, customer_id, rule, matched_at)
		VALUES ({src:String}, {b:String}, {a:String}, 'email', now64(3) + 60)`,
		clickhouse.Named("a", a), clickhouse.Named("b", b), clickhouse.Named("src", src)); err != nil {
		t.Fatal(err)
	}
}

// TestPeopleRollup: rollup_people holds every person's row as computed from
// all their touchpoints, after the first build, after re-sent first events,
// an earlier touch, a new visitor and an identity merge are folded in person
// by person (not rebuilt), and after a round that died is done again; the
// funnel from it equals the funnel from raw rows.
func TestPeopleRollup(t *testing.T) {
	ctx := context.Background()
	st, reg := smallDemo(t)
	if _, err := reg.UpkeepRollups(ctx); err != nil {
		t.Fatal(err)
	}
	if d := peopleDiff(t, st); d != "" {
		t.Fatalf("after the first build: %s", d)
	}
	var built uint64
	if err := st.Conn.QueryRow(ctx, "SELECT min(_version) FROM rollup_people").Scan(&built); err != nil {
		t.Fatal(err)
	}
	resendTouchpoints(t, st)
	mergeIdentities(t, st)
	if peopleDiff(t, st) == "" {
		t.Fatal("the new touchpoints change no person's row: the test proves nothing")
	}
	boom := errors.New("killed")
	reg.SetRollupFault(func(step string) error {
		if step == "replaced rollup_people" {
			return boom
		}
		return nil
	})
	if _, err := reg.UpkeepRollups(ctx); !errors.Is(err, boom) {
		t.Fatalf("upkeep with a fault: %v, want it to stop", err)
	}
	reg.SetRollupFault(nil)
	if d := peopleDiff(t, st); d != "" {
		t.Fatalf("after a round that died after folding in: %s", d)
	}
	up, err := reg.UpkeepRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Built) != 0 {
		t.Fatalf("upkeep built %v, want the new facts folded in", up.Built)
	}
	if d := peopleDiff(t, st); d != "" {
		t.Fatalf("after the new touchpoints and the identity merge: %s", d)
	}
	var kept uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM rollup_people WHERE _version = {v:UInt64}", clickhouse.Named("v", built)).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept == 0 {
		t.Fatal("no row of the first build is left: the rollup was rebuilt, not folded into")
	}
	// Each fold drops its staging table, the round that died too.
	var stages uint64
	if err := st.Conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'rollup\\_people\\_fold\\_stage\\_%'").Scan(&stages); err != nil {
		t.Fatal(err)
	}
	if stages != 0 {
		t.Fatalf("%d fold staging tables left behind", stages)
	}
	for _, by := range []string{"none", "channel"} {
		p := metrics.Params{From: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			Grain: metrics.Month, TZ: time.UTC, WeekStart: time.Monday, FiscalYearStart: time.January,
			Args: map[string]string{"window_days": "30", "breakdown": by}}
		label := "funnel_conversion over the whole history by " + by
		rolled, raw := rolledAndRaw(t, reg, "funnel_conversion", p, label, "rollup_people")
		if diff := sameTable(raw.Table, rolled.Table); diff != "" {
			t.Errorf("%s: rollup differs from raw rows: %s", label, diff)
		}
	}
}
