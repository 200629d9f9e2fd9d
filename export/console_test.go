package export

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestGate(t *testing.T) {
	g := &Gate{PerUser: 2, Total: 3}
	type step struct {
		user string
		ok   bool
		mine bool // refused for the person's own limit
	}
	steps := []step{
		{"ann", true, false}, {"ann", true, false}, {"ann", false, true}, // two of ann's at most
		{"bob", true, false}, {"bob", false, false}, // three in all
		{"cid", false, false},
	}
	var releases []func()
	for i, s := range steps {
		release, err := g.Enter(s.user)
		var be *BusyError
		switch {
		case s.ok && err != nil:
			t.Fatalf("step %d (%s): refused: %v", i, s.user, err)
		case s.ok:
			releases = append(releases, release)
		case !errors.As(err, &be) || be.Mine != s.mine:
			t.Fatalf("step %d (%s): %v, want a BusyError (own limit %v)", i, s.user, err, s.mine)
		}
	}
	if mine, all := g.Running("ann"); mine != 2 || all != 3 {
		t.Errorf("running: ann %d, all %d", mine, all)
	}
	_, err := g.Enter("ann")
	if err == nil || !strings.Contains(err.Error(), "you have 2 console queries running") {
		t.Errorf("ann's third: %v", err)
	}
	_, err = g.Enter("dan")
	if err == nil || !strings.Contains(err.Error(), "the console is running 3 queries") {
		t.Errorf("dan over the total: %v", err)
	}
	releases[0]()
	releases[0]() // once only
	if mine, all := g.Running("ann"); mine != 1 || all != 2 {
		t.Errorf("after one release: ann %d, all %d", mine, all)
	}
	if release, err := g.Enter("dan"); err != nil {
		t.Errorf("dan after a release: %v", err)
	} else {
		release()
	}

	// Concurrent entries never pass the limits.
	g = &Gate{PerUser: 2, Total: 3}
	var mu sync.Mutex
	in, peak := 0, 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := g.Enter([]string{"a", "b", "c"}[i%3])
			if err != nil {
				return
			}
			mu.Lock()
			in++
			peak = max(peak, in)
			mu.Unlock()
			mu.Lock()
			in--
			mu.Unlock()
			release()
		}()
	}
	wg.Wait()
	if peak > 3 {
		t.Errorf("%d ran at once, want at most 3", peak)
	}
	if _, all := g.Running("a"); all != 0 {
		t.Errorf("%d still counted after all released", all)
	}
	// A nil gate admits everything.
	var none *Gate
	if release, err := none.Enter("x"); err != nil {
		t.Error(err)
	} else {
		release()
	}
}

// A download of a query WITH TOTALS ends with its totals row, below a TOTALS line and above a
// TRUNCATED one; the manifest says so and does not count it.
func TestSQLExportTotals(t *testing.T) {
	st := whtest.Store(t)
	ctx := context.Background()
	q := "SELECT number % 3 AS k, count() AS n, sum(toDecimal64(number, 2)) AS s FROM numbers(10) GROUP BY k WITH TOTALS ORDER BY k"
	cases := []struct {
		name    string
		o       Options
		want    string
		rows    int
		trunc   bool
		nototal bool
	}{
		{"all rows", Options{Raw: true}, "k,n,s\n0,4,18.00\n1,3,12.00\n2,3,15.00\n" + totalsNote + "\n0,10,45.00\n", 3, false, false},
		{"cut", Options{Raw: true, MaxRows: 2}, "k,n,s\n0,4,18.00\n1,3,12.00\n" + totalsNote + "\n0,10,45.00\n" +
			"TRUNCATED: first 2 rows of more; the export stopped at its row limit (max rows 2). This file is incomplete; see the manifest.\n", 2, true, false},
		{"no totals", Options{Raw: true}, "", 3, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			query := q
			if tc.nototal {
				query = strings.Replace(q, " WITH TOTALS", "", 1)
			}
			var buf bytes.Buffer
			m, err := SQL(ctx, st, warehouse.Console{}, query, &buf, tc.o)
			if err != nil && !(tc.trunc && errors.Is(err, ErrTruncated)) {
				t.Fatal(err)
			}
			if tc.nototal {
				if strings.Contains(buf.String(), "TOTALS") || m.Totals {
					t.Errorf("a query without totals: %q, manifest totals %v", buf.String(), m.Totals)
				}
				return
			}
			if buf.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tc.want)
			}
			if m.Rows != tc.rows || !m.Totals || m.Truncated != tc.trunc {
				t.Errorf("manifest rows %d totals %v truncated %v", m.Rows, m.Totals, m.Truncated)
			}
		})
	}
	// XLSX: the same two rows after the data, the totals typed.
	var xb bytes.Buffer
	if _, err := SQL(ctx, st, warehouse.Console{}, q, &xb, Options{Format: XLSX}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&xb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := f.GetCellValue(sheetName, "A5"); got != totalsNote {
		t.Errorf("A5 %q, want the totals note", got)
	}
	if got, _ := f.GetCellValue(sheetName, "B6"); got != "10" {
		t.Errorf("B6 %q, want the total count 10", got)
	}
	if typ, _ := f.GetCellType(sheetName, "C6"); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
		t.Errorf("the totals' sum is text, want a number")
	}
}

func TestCompositeText(t *testing.T) {
	cases := []struct {
		v    any
		want string
		ok   bool
	}{
		{[]uint8{1, 2}, "[1,2]", true},
		{[]string{"a", `b"c`}, `["a","b\"c"]`, true},
		{map[string]uint64{"b": 2, "a": 1}, `{"a":1,"b":2}`, true},
		{map[uint64][]int64{7: {1}}, `{"7":[1]}`, true},
		{[]any{int64(1), "x", nil}, `[1,"x",null]`, true},
		{map[string]any{"name": "x", "n": decimal.RequireFromString("1.50")}, `{"n":1.5,"name":"x"}`, true},
		{[]*big.Int{big.NewInt(12)}, "[12]", true},
		{[][]uint8{{1}, {}}, "[[1],[]]", true},
		{"text", "", false},
		{int64(3), "", false},
		{nil, "", false},
	}
	for _, tc := range cases {
		got, ok := CompositeText(tc.v)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%#v: %q %v, want %q %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
