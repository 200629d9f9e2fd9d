package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.yaml.in/yaml/v3"
)

// Fuzz targets of the ingest parsers. `go test ./ingest` runs their seeds (the presets, the
// fixtures of testdata/ and the committed corpus under testdata/fuzz) as ordinary tests; `make
// fuzz` explores each for a few seconds. None needs the store: records go through a dry run.

// presetSeeds are the built-in presets and the fixture each comes with (testdata/NAME.csv).
func presetSeeds(t testing.TB) (names []string, yamls, fixtures [][]byte) {
	ents, err := builtinPresets.ReadDir("presets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		y, err := builtinPresets.ReadFile("presets/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		csv, err := os.ReadFile(filepath.Join("testdata", name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		names, yamls, fixtures = append(names, name), append(yamls, y), append(fixtures, csv)
	}
	return names, yamls, fixtures
}

// FuzzParseMapping: a mapping file either is rejected with an error that names the mapping and
// the line (YAML) or key it is about, or is accepted, and then it validates again, it survives
// a YAML round trip unchanged, and it compiles against a header holding the columns it names.
func FuzzParseMapping(f *testing.F) {
	_, yamls, _ := presetSeeds(f)
	for _, y := range yamls {
		f.Add(y)
	}
	for _, y := range []string{
		"entity: marketing_spend\ncsv: {delimiter: \";\"}\ndecimal: \",\"\nfields:\n  date: {column: Tag, layout: \"02.01.2006\"}\n  channel: {value: search}\n  spend: {column: Kosten}\n  currency: {value: EUR}\n",
		"entity: orders\nfields:\n  order_id: {column: Nr}\n  revenue: {column: Total, transform: [trim, negate, \"multiply:0.01\"]}\n",
		"entity: touchpoints\nformat: ndjson\nfields:\n  campaign: {template: \"{utm_source}/{utm_campaign}\"}\n  kind: {column: type, map: {o: open}, other: visit, default: visit}\n",
		"entity: customers\ncsv: {quote: none, bom: keep, skip_lines: 2, no_header: true, delimiter: tab}\nkey: [email]\nfields:\n  email: {column: \"1\", fallback: \"2\"}\n",
		"entity: orders\ntimezone: Europe/Berlin\nfields:\n  ordered_at: {column: t, zone: America/New_York, layout: unix}\n",
		"entity: nope\n", "entity: orders\nformat: xml\n", "entity: orders\nunknown_key: 1\n", "", "- a\n- b\n", "entity: [\n",
	} {
		f.Add([]byte(y))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMapping("fuzz.yaml", b)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "mapping fuzz.yaml: ") {
				t.Fatalf("error %q does not name the mapping", msg)
			}
			if !mappingErrorLocated(strings.TrimPrefix(msg, "mapping fuzz.yaml: ")) {
				t.Fatalf("error %q names neither a line nor a key", msg)
			}
			return
		}
		if err := m.validate(); err != nil {
			t.Fatalf("accepted mapping does not validate again: %v", err)
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		m2, err := ParseMapping("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("the accepted mapping, written back as YAML, is rejected: %v\n%s", err, out)
		}
		if out2, _ := yaml.Marshal(m2); !bytes.Equal(out, out2) {
			t.Fatalf("YAML round trip changed the mapping:\n%s\n---\n%s", out, out2)
		}
		ent, _ := LookupEntity(m.Entity)
		cols := newColumns(mappingColumns(m), true)
		if _, err := compile(m, ent, cols, nil); err != nil {
			t.Fatalf("accepted mapping does not compile against a header with its columns %q: %v", cols.names, err)
		}
	})
}

// mappingErrorLocated tells whether a mapping error names a YAML line or the key it is about.
func mappingErrorLocated(msg string) bool {
	if strings.HasPrefix(msg, "yaml: ") || strings.Contains(msg, "line ") {
		return strings.Contains(msg, "line ")
	}
	for _, k := range []string{"empty", "entity: ", "format: ", "csv.", "decimal: ", "thousands: ", "timezone: ", "lines: ", "fields.", "key: "} {
		if strings.HasPrefix(msg, k) {
			return true
		}
	}
	return false
}

// mappingColumns are the source columns a mapping names.
func mappingColumns(m *Mapping) []string {
	var cols []string
	add := func(c string) {
		if c != "" && !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	for _, fm := range m.Fields {
		add(fm.Column)
		add(fm.Fallback)
		refs, _ := splitTemplate(fm.Template)
		for _, r := range refs {
			if r.isCol {
				add(r.text)
			}
		}
	}
	return cols
}

// loadChoice is a way of reading a file: a preset, or an entity's canonical field names.
type loadChoice struct {
	name string
	m    *Mapping
}

func loadChoices(t testing.TB) []loadChoice {
	names, yamls, _ := presetSeeds(t)
	var out []loadChoice
	for i, n := range names {
		m, err := ParseMapping(n, yamls[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, loadChoice{"preset " + n, m})
	}
	for _, e := range EntityNames() {
		out = append(out, loadChoice{"entity " + e, &Mapping{Entity: e}})
	}
	return out
}

var fuzzFormats = []string{"", "csv", "tsv", "ndjson"}

// dryLoad reads data through a dry run of choice c in format (empty: from the mapping, else
// from the name fuzz.csv) and returns its summary, error and every reject.
func dryLoad(t *testing.T, c loadChoice, format string, data []byte) (Summary, error, []Reject) {
	var rejects []Reject
	l, err := NewDryRun(Options{Mapping: c.m, Format: format, Source: "fuzz", BatchRows: 7,
		MaxFieldBytes: 1 << 10, OnReject: func(r Reject) { rejects = append(rejects, r) }}, "fuzz.csv")
	if err != nil {
		t.Fatal(err)
	}
	runErr := l.Load(context.Background(), bytes.NewReader(data), "fuzz.csv")
	sum, err := l.Close(context.Background(), runErr)
	return sum, err, rejects
}

// Field-level reject codes name the field; record-level ones (the record could not be split
// into fields) may not.
var (
	fieldCodes = []string{"missing_field", "bad_time", "bad_date", "bad_number", "out_of_range", "bad_bool", "bad_value", "bad_encoding", "too_long", "conflicting_duplicate",
		"bad_currency", "not_scalar", "negative_amount"}
	recordCodes = []string{"bad_csv", "bad_json", "field_count", "too_long", "bad_encoding"}
)

// FuzzLoadRecords reads arbitrary bytes as a CSV, TSV or NDJSON file through each preset and
// each entity's canonical mapping (a dry run: the real reader, converter and in-run dedup, no
// store). Invariants: no panic; either the file is refused as a whole with a precise error, or
// read = loaded + rejected + duplicates, every reject names a line within the file and a code
// (and the field, for field-level codes), and reading the same bytes again gives the same
// outcome.
func FuzzLoadRecords(f *testing.F) {
	choices := loadChoices(f)
	names, _, fixtures := presetSeeds(f)
	for i := range names {
		f.Add(uint8(i), uint8(0), fixtures[i])
		if i == 0 {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write(fixtures[i])
			_ = zw.Close()
			f.Add(uint8(i), uint8(0), b.Bytes())
		}
	}
	entity := func(name string) uint8 {
		return uint8(slices.IndexFunc(choices, func(c loadChoice) bool { return c.name == "entity "+name }))
	}
	for _, s := range []struct {
		entity string
		format uint8
		body   string
	}{
		{"orders", 1, "order_id,customer_id,ordered_at,revenue,currency\no1,c1,2024-03-01 10:00:00,10.5,EUR\no2,c1,2024-13-45 10:00,3,EUR\no1,c1,2024-03-01,11,EUR\n"},
		{"orders", 1, "order_id,customer_id,ordered_at,revenue,currency\no1,\"c\"1\",2024-03-01,10,EUR\no2,M\xfcller,2024-03-01,1e3,eur\no3,c1\n"},
		{"customers", 1, "\ufeffcustomer_id,segment,email\nc1,\"two\nlines\",A@B.C\nc2,ok,\nc3,\"bad\"x,\n"},
		{"orders", 2, "order_id\tordered_at\trevenue\tcurrency\no1\t2024-03-01\t1\tEUR\no2\t1709287200\t-0.00001\tEUR\n"},
		{"touchpoints", 3, `{"event_id":"e1","occurred_at":"2024-03-01T10:00:00Z","channel":"web","kind":"visit","utm_source":"google"}` + "\n" +
			`{"event_id":"e2","occurred_at":"2024-03-01T10:00:00Z","channel":"web"` + "\n" +
			"{\"event_id\":\"e3\",\"occurred_at\":\"2024-03-01T10:00:00Z\",\"channel\":\"w\xffb\",\"kind\":\"visit\"}\n\n" +
			`{"event_id":"e4","occurred_at":1709287200,"channel":"web","kind":"visit","properties":{"a":[1,null]}}` + "\n[1]\nnull\n" +
			"{\"event_id\":\"e5\",\"occurred_at\":\"2024-03-01\",\"channel\":\"\xff\",\"kind\":\"\xfe\",\"campaign\":\"\xfd\"}\n"},
		{"survey_responses", 1, "response_id,answered_at,kind,score\nr1,2024-03-01,nps,11\nr2,2024-03-01,csat,5\nr3,2024-03-01,xyz,1\nr4,2024-03-01,ces,99999\n"},
		{"tickets", 1, "ticket_id,opened_at,csat,resolved_at\nt1,2024-03-01T00:00:00+02:00,0,\nt2,2024-03-01,5,2024-03-02 10:00\nt3,2024-03-01,6,x\n"},
		{"marketing_spend", 1, "date,channel,campaign,spend,currency,impressions,clicks,conversions\n2024-03-01,search,a,1.5,EUR,10,2,0.5\n2024-03-01,search,a,2,EUR,-1,x,NaN\n2024-03-01,search,a,2,EUR,1,1,1\n0001-01-01,search,a,1,EUR,1,1,1\n"},
		{"consents", 1, "customer_id,channel,purpose,granted,source_system,recorded_at\nc1,email,news,yes,crm,2024-03-01\nc1,email,news,maybe,crm,2024-03-01\n"},
		{"rewards", 1, "customer_id,granted_at,amount,currency\nc1,2024-03-01,5,EUR\nc1,2024-03-01,5,EUR\n"},
	} {
		f.Add(entity(s.entity), s.format, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, choice, format uint8, data []byte) {
		c := choices[int(choice)%len(choices)]
		fmtName := fuzzFormats[int(format)%len(fuzzFormats)]
		sum, err, rejects := dryLoad(t, c, fmtName, data)
		if err != nil {
			if strings.Contains(err.Error(), "internal") || !strings.HasPrefix(sum.Status, "failed") {
				t.Fatalf("%s %s: %v (status %s)", c.name, fmtName, err, sum.Status)
			}
			return
		}
		if sum.Read != sum.Loaded+sum.Rejected+sum.Duplicates {
			t.Fatalf("%s: read %d != loaded %d + rejected %d + duplicates %d", c.name, sum.Read, sum.Loaded, sum.Rejected, sum.Duplicates)
		}
		if int64(len(rejects)) != sum.Rejected {
			t.Fatalf("%s: %d rejects reported, summary says %d", c.name, len(rejects), sum.Rejected)
		}
		gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
		lines := int64(bytes.Count(data, []byte("\n")) + 1)
		if !gz && sum.Read > lines {
			t.Fatalf("%s: read %d records from %d lines", c.name, sum.Read, lines)
		}
		for _, r := range rejects {
			if r.Line < 1 || (!gz && r.Line > lines) {
				t.Fatalf("%s: reject %+v names line %d of a file of %d lines", c.name, r, r.Line, lines)
			}
			if r.Reason == "" || r.File != "fuzz.csv" {
				t.Fatalf("%s: reject %+v without reason or file", c.name, r)
			}
			switch {
			case r.Field == "" && !slices.Contains(recordCodes, r.Code):
				t.Fatalf("%s: reject %+v names no field", c.name, r)
			case r.Field != "" && !slices.Contains(fieldCodes, r.Code):
				t.Fatalf("%s: reject %+v has an unknown code", c.name, r)
			}
		}
		sum2, err2, rejects2 := dryLoad(t, c, fmtName, data)
		if err2 != nil || sum2.Read != sum.Read || sum2.Loaded != sum.Loaded || sum2.Duplicates != sum.Duplicates ||
			!reflect.DeepEqual(rejects2, rejects) || !reflect.DeepEqual(sum2.Tables, sum.Tables) || !slices.Equal(sum2.Warnings, sum.Warnings) {
			t.Fatalf("%s: the same bytes read twice differ:\n%+v %v\n%+v %v", c.name, sum, rejects, sum2, rejects2)
		}
	})
}

// fieldKinds are the kinds of canonical fields as the entities declare them.
var fieldKinds = []Field{
	{Name: "t", Kind: KTime}, {Name: "d", Kind: KDate}, {Name: "dec", Kind: KDecimal}, {Name: "i", Kind: KInt},
	{Name: "i16", Kind: KInt, Bits: 16}, {Name: "u", Kind: KUInt}, {Name: "u32", Kind: KUInt, Bits: 32},
	{Name: "u8", Kind: KUInt, Bits: 8, Max: 5, Nullable: true}, {Name: "fl", Kind: KFloat}, {Name: "b", Kind: KBool},
	cur("currency"), ref(lower(s("status")), ticketStatus), nonNeg(dec("revenue"), whyRevenue), s("id"),
}

// FuzzFieldValue converts one value to each field kind, under a decimal comma and a thousands
// separator or not. An accepted value is finite and in range, and its canonical text (what
// ids and content hashes are computed from) converts again, with the plain settings, to the
// same value and text: parse(format(x)) = x. The fast decimal parser agrees with the general one.
func FuzzFieldValue(f *testing.F) {
	for _, s := range []struct {
		kind      uint8
		v         string
		comma     bool
		thousands string
	}{
		{0, "2024-03-01T10:00:00Z", false, ""}, {0, "2024-03-01 10:00:00.123456 +0200", false, ""}, {0, "1709287200", false, ""},
		{0, "1709287200123", false, ""}, {0, "1709287200.5", false, ""}, {1, "2024-02-29", false, ""}, {1, "2010-12-01 08:26", false, ""},
		{2, "1.234,56", true, ""}, {2, "1,234.5", false, ","}, {2, "-0.00005", false, ""}, {2, "99999999999999.9999", false, ""},
		{2, "1e-3", false, ""}, {2, "+12", false, ""}, {3, "-9223372036854775808", false, ""}, {3, "3.0", false, ""},
		{4, "32768", false, ""}, {5, "-1", false, ""}, {6, "4294967296", false, ""}, {7, "5", false, ""}, {7, "6", false, ""},
		{8, "0.5", false, ""}, {8, "NaN", false, ""}, {8, "1e308", false, ""}, {9, "Opt-In", false, ""}, {9, "maybe", false, ""},
		{10, "usd", false, ""}, {10, "€URO", false, ""}, {10, "XX", false, ""}, {11, "Solved", false, ""}, {11, "any", false, ""},
		{12, "-0.01", false, ""}, {12, "-0", false, ""}, {13, `{"a":1}`, false, ""}, {13, "[1,2]", false, ""}, {2, `{"x":2}`, false, ""},
	} {
		f.Add(s.kind, s.v, s.comma, s.thousands)
	}
	plain := &converter{}
	f.Fuzz(func(t *testing.T, kind uint8, v string, comma bool, thousands string) {
		fd := fieldKinds[int(kind)%len(fieldKinds)]
		c := &converter{decComma: comma, thousands: thousands}
		sp := &fieldSpec{f: fd, col: 0, fallback: -1, loc: time.UTC, layouts: defaultLayouts, canon: true}
		val, str, fe := c.value(sp, v)
		if d, ok := fastDecimal(v); ok {
			if g, err := decimal.NewFromString(v); err != nil || !g.Equal(d) {
				t.Fatalf("fastDecimal(%q) = %s, the general parser %s (%v)", v, d, g, err)
			}
		}
		if fe != nil {
			if fe.Field != fd.Name || fe.Code == "" || fe.Code == "internal" || fe.Reason == "" {
				t.Fatalf("%s %q: error %+v", fd.Name, v, fe)
			}
			return
		}
		switch x := val.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%s %q: accepted %v", fd.Name, v, x)
			}
		case decimal.Decimal:
			if x.Abs().GreaterThanOrEqual(maxDecimal) || x.Exponent() < -4 {
				t.Fatalf("%s %q: %s does not fit Decimal(18, 4)", fd.Name, v, x)
			}
		case time.Time:
			lo, hi := minTime, maxTime
			if fd.Kind == KDate {
				lo, hi = minDate, maxDate
			}
			if x.Before(lo) || x.After(hi) {
				t.Fatalf("%s %q: %s is outside the stored type's range", fd.Name, v, x)
			}
		}
		if str == "" {
			return // empty: the field's NULL or default
		}
		sp2 := &fieldSpec{f: fd, col: 0, fallback: -1, loc: time.UTC, layouts: defaultLayouts, canon: true}
		val2, str2, fe2 := plain.value(sp2, str)
		if fe2 != nil || str2 != str || fmt.Sprint(deref(val2)) != fmt.Sprint(deref(val)) {
			t.Fatalf("%s %q: canonical %q converts to %v %q (%v), want %v", fd.Name, v, str, deref(val2), str2, fe2, deref(val))
		}
	})
}

func deref(v any) any {
	if p, ok := v.(*uint8); ok && p != nil {
		return *p
	}
	return v
}
