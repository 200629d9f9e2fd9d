package ingest

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Mapping says how the records of one source become canonical records. It is
// a data file (YAML); presets are mappings shipped in the binary or dropped
// into the presets folder. The zero Mapping is the canonical one: a header
// that uses the entity's field names loads as is.
//
//	name: shopify_orders          # preset name
//	entity: orders                # canonical entity
//	source: shopify               # source written to the store (default: name, or "file")
//	format: csv                   # csv | tsv | ndjson (default: from the file name)
//	csv: {delimiter: ",", quote: "\"", bom: strip, skip_lines: 0, lazy_quotes: false}
//	decimal: "."                  # decimal separator of numbers: "." or ","
//	thousands: ""                 # thousands separator removed from numbers
//	null_values: ["", "NA"]       # values read as empty
//	timezone: Europe/London       # zone of times without one (the --tz flag overrides)
//	key: [order_id]               # natural key: the record id is derived from it when the id field is empty
//	fields:                       # canonical field -> how to get it
//	  order_id: {column: Name}
//	  ordered_at: {column: Created at, layout: ["2006-01-02 15:04:05 -0700"]}
//	  currency: {value: EUR}                          # a constant
//	  campaign: {template: "{utm_source}/{utm_campaign}"}  # concatenation of columns
//	  status: {column: Financial Status, map: {paid: completed}, default: completed}
//	  revenue: {column: Total, transform: [trim, negate, "multiply:0.01"]}
//	lines: {refund_prefix: C}     # orders only: each row is an order line (see Lines)
//	unknown: warn                 # columns the fields do not read: warn (default) | reject
//
// Every value is trimmed of surrounding white space; then null values become
// empty; then the transforms run in order (trim, lower, upper, negate, abs,
// digits, multiply:N, divide:N); then map replaces a whole value (values not
// in the map pass unchanged); then an empty value takes default.
type Mapping struct {
	Name        string              `yaml:"name"`
	Description string              `yaml:"description"`
	Entity      string              `yaml:"entity"`
	Source      string              `yaml:"source"`
	Format      string              `yaml:"format"`
	CSV         CSVOptions          `yaml:"csv"`
	Decimal     string              `yaml:"decimal"`
	Thousands   string              `yaml:"thousands"`
	Null        []string            `yaml:"null_values"`
	Timezone    string              `yaml:"timezone"`
	Key         []string            `yaml:"key"`
	Fields      map[string]FieldMap `yaml:"fields"`
	Lines       *Lines              `yaml:"lines"`
	// Unknown is what becomes of source columns the fields do not read:
	// UnknownWarn (default) or UnknownReject (see Options.Unknown).
	Unknown string `yaml:"unknown"`

	// file is where the mapping was read from, for error messages.
	file string
}

// CSVOptions are the dialect of a delimited file.
type CSVOptions struct {
	Delimiter  string `yaml:"delimiter"`   // one character; default "," (tab for tsv); "\t" accepted
	Quote      string `yaml:"quote"`       // "\"" (default) or "none"
	BOM        string `yaml:"bom"`         // strip (default) | keep
	SkipLines  int    `yaml:"skip_lines"`  // lines before the header (report titles)
	LazyQuotes bool   `yaml:"lazy_quotes"` // accept quotes inside unquoted fields
	NoHeader   bool   `yaml:"no_header"`   // columns are then named 1, 2, 3, ...
}

// FieldMap is how one canonical field is obtained from a source record.
type FieldMap struct {
	Column    string            `yaml:"column"`
	Template  string            `yaml:"template"`
	Value     *string           `yaml:"value"`
	Layout    StringList        `yaml:"layout"`
	Zone      string            `yaml:"zone"`
	Transform []string          `yaml:"transform"`
	Map       map[string]string `yaml:"map"`
	Other     *string           `yaml:"other"`    // with map: the value for values not in it (default: unchanged)
	Fallback  string            `yaml:"fallback"` // column read when Column is empty
	Default   string            `yaml:"default"`
}

// Lines turns an orders source whose rows are order lines (Online Retail,
// Shopify) into order_lines, orders and refunds:
//   - every row is an order line; line_no is its position within its order in
//     source order (from 1), so identical lines stay separate;
//   - amount defaults to quantity x unit_price;
//   - each order gets one orders row: header fields from its first line,
//     revenue = the sum of its line amounts unless revenue is mapped;
//   - an order whose id starts with RefundPrefix (a cancellation) is written
//     as one refunds row instead (refund_id = its id, amount = minus the sum of
//     its line amounts, so positive for returned goods); its lines keep their
//     negative amounts. Net revenue = sum(orders.revenue) - sum(refunds.amount)
//     = sum of all line amounts.
type Lines struct {
	RefundPrefix string `yaml:"refund_prefix"`
	RefundReason string `yaml:"refund_reason"`
}

// StringList is a YAML scalar or sequence of strings.
type StringList []string

// UnmarshalYAML accepts "a" as well as ["a", "b"].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

//go:embed presets/*.yaml
var builtinPresets embed.FS

// ParseMapping reads a mapping from YAML; unknown keys are errors (with their
// line), so a typo does not silently drop a field.
func ParseMapping(name string, b []byte) (*Mapping, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var m Mapping
	if err := dec.Decode(&m); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("mapping %s: empty: a mapping names at least its entity", name)
		}
		if !strings.Contains(err.Error(), "line ") {
			// errors of the YAML reader carry no position: name the first bad byte's line, else
			// the last line (where an unclosed quote or bracket is found missing)
			ln := badTextLine(b)
			if ln == 0 {
				ln = bytes.Count(bytes.TrimRight(b, "\n"), []byte("\n")) + 1
			}
			return nil, fmt.Errorf("mapping %s: line %d: %w", name, ln, err)
		}
		return nil, fmt.Errorf("mapping %s: %w", name, err)
	}
	m.file = name
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("mapping %s: %w", name, err)
	}
	return &m, nil
}

// badTextLine is the line (from 1) of the first byte that is not text a YAML file may hold
// (invalid UTF-8, or a control character other than tab and line ends), or 0. The YAML
// reader reports these without a position.
func badTextLine(b []byte) int {
	line := 1
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n <= 1, r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f, r >= 0x80 && r < 0xa0, r == 0xfffe, r == 0xffff:
			return line
		case r == '\n':
			line++
		}
		b = b[n:]
	}
	return 0
}

// LoadMappingFile reads a mapping file.
func LoadMappingFile(path string) (*Mapping, error) {
	b, err := readSmallFile(path, maxMappingBytes)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	return ParseMapping(path, b)
}

// Preset returns the preset called name: a file name.yaml in dir (user
// presets, which win) or a built-in one. dir may be empty.
func Preset(name, dir string) (*Mapping, error) {
	if dir != "" {
		p := filepath.Join(dir, name+".yaml")
		if _, err := os.Stat(p); err == nil {
			return LoadMappingFile(p)
		}
	}
	b, err := builtinPresets.ReadFile("presets/" + name + ".yaml")
	if err != nil {
		names, _ := PresetNames(dir)
		return nil, fmt.Errorf("unknown preset %q (one of %s)", name, strings.Join(names, ", "))
	}
	return ParseMapping("preset "+name, b)
}

// PresetNames lists built-in and user presets, sorted.
func PresetNames(dir string) ([]string, error) {
	seen := map[string]bool{}
	ents, _ := fs.ReadDir(builtinPresets, "presets")
	for _, e := range ents {
		seen[strings.TrimSuffix(e.Name(), ".yaml")] = true
	}
	if dir != "" {
		m, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, p := range m {
			seen[strings.TrimSuffix(filepath.Base(p), ".yaml")] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// entity returns the mapping's entity; for lines it is the orders entity.
func (m *Mapping) validate() error {
	if m.Entity == "" {
		return errors.New("entity: missing")
	}
	e, err := LookupEntity(m.Entity)
	if err != nil {
		return fmt.Errorf("entity: %w", err)
	}
	switch m.Format {
	case "", "csv", "tsv", "ndjson":
	default:
		return fmt.Errorf("format: %q is not one of csv, tsv, ndjson", m.Format)
	}
	if _, err := m.CSV.delimiter(m.Format); err != nil {
		return err
	}
	switch m.CSV.Quote {
	case "", `"`, "none":
	default:
		return fmt.Errorf(`csv.quote: %q is not "\"" or none`, m.CSV.Quote)
	}
	switch m.CSV.BOM {
	case "", "strip", "keep":
	default:
		return fmt.Errorf("csv.bom: %q is not strip or keep", m.CSV.BOM)
	}
	switch m.Unknown {
	case "", UnknownWarn, UnknownReject:
	default:
		return fmt.Errorf("unknown: %q is not %s or %s", m.Unknown, UnknownWarn, UnknownReject)
	}
	switch m.Decimal {
	case "", ".", ",":
	default:
		return fmt.Errorf(`decimal: %q is not "." or ","`, m.Decimal)
	}
	if m.Timezone != "" {
		if _, err := time.LoadLocation(m.Timezone); err != nil {
			return fmt.Errorf("timezone: %w", err)
		}
	}
	if m.Lines != nil && m.Entity != "orders" {
		return errors.New("lines: only for entity orders")
	}
	for name, f := range m.Fields {
		if !m.hasField(e, name) {
			return fmt.Errorf("fields.%s: not a field of %s (fields: %s)", name, m.Entity, strings.Join(m.fieldNames(e), ", "))
		}
		n := 0
		if f.Column != "" {
			n++
		}
		if f.Template != "" {
			n++
		}
		if f.Value != nil {
			n++
		}
		if n > 1 {
			return fmt.Errorf("fields.%s: give one of column, template, value", name)
		}
		if f.Template != "" {
			if _, err := splitTemplate(f.Template); err != nil {
				return fmt.Errorf("fields.%s.%w", name, err)
			}
		}
		if f.Fallback != "" && f.Column == "" {
			return fmt.Errorf("fields.%s.fallback: needs column", name)
		}
		if f.Other != nil && f.Map == nil {
			return fmt.Errorf("fields.%s.other: needs map", name)
		}
		if f.Zone != "" {
			if _, err := time.LoadLocation(f.Zone); err != nil {
				return fmt.Errorf("fields.%s.zone: %w", name, err)
			}
		}
		for _, tr := range f.Transform {
			if _, err := parseTransform(tr); err != nil {
				return fmt.Errorf("fields.%s.transform: %w", name, err)
			}
		}
		if err := m.checkValues(e, name, f); err != nil {
			return err
		}
	}
	for _, k := range m.Key {
		if !m.hasField(e, k) {
			return fmt.Errorf("key: %s is not a field of %s", k, m.Entity)
		}
	}
	return nil
}

// checkValues refuses a mapping whose own values (value, map, other, default) are not what the
// field holds: a status outside its list, a currency that is not ISO 4217. A value read from
// the source is checked per record; these are checked once, when the mapping is read, so a
// typo in a preset fails its load instead of quarantining every record.
func (m *Mapping) checkValues(e *Entity, name string, fm FieldMap) error {
	fd, _, ok := e.field(name)
	if !ok && m.Lines != nil {
		fd, _, ok = entities["order_lines"].field(name)
	}
	if !ok || (fd.Ref == nil && !fd.Currency) {
		return nil
	}
	check := func(where, v string) error {
		switch fd.Norm {
		case "lower":
			v = strings.ToLower(v)
		case "upper":
			v = strings.ToUpper(v)
		}
		v = strings.TrimSpace(v)
		if v == "" {
			return nil
		}
		var fe *FieldError
		if fd.Currency {
			fe = checkCurrency(name, v)
		} else {
			_, fe = fd.Ref.check(name, v)
		}
		if fe != nil {
			return fmt.Errorf("fields.%s.%s: %s", name, where, fe.Reason)
		}
		return nil
	}
	// A constant goes through the transforms and the map: checked when it reaches the field as is.
	if fm.Value != nil && fm.Map == nil && len(fm.Transform) == 0 {
		if err := check("value", *fm.Value); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(fm.Map))
	for k := range fm.Map {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := check("map."+k, fm.Map[k]); err != nil {
			return err
		}
	}
	if fm.Other != nil {
		if err := check("other", *fm.Other); err != nil {
			return err
		}
	}
	return check("default", fm.Default)
}

func (m *Mapping) hasField(e *Entity, name string) bool {
	if _, _, ok := e.field(name); ok {
		return true
	}
	if m.Lines != nil {
		_, _, ok := entities["order_lines"].field(name)
		return ok
	}
	return false
}

func (m *Mapping) fieldNames(e *Entity) []string {
	names := e.FieldNames()
	if m.Lines != nil {
		for _, n := range entities["order_lines"].FieldNames() {
			if _, _, ok := e.field(n); !ok {
				names = append(names, n)
			}
		}
	}
	return names
}

func (o CSVOptions) delimiter(format string) (rune, error) {
	d := o.Delimiter
	switch d {
	case "":
		if format == "tsv" {
			return '\t', nil
		}
		return ',', nil
	case `\t`, "tab":
		return '\t', nil
	}
	r := []rune(d)
	if len(r) != 1 || r[0] == '"' || r[0] == '\r' || r[0] == '\n' {
		return 0, fmt.Errorf("csv.delimiter: %q is not one character other than quote or newline", d)
	}
	return r[0], nil
}

// transform is one compiled transform step.
type transform struct {
	op     string
	factor string
}

func parseTransform(s string) (transform, error) {
	op, arg, _ := strings.Cut(s, ":")
	op = strings.TrimSpace(op)
	switch op {
	case "trim", "lower", "upper", "negate", "abs", "digits":
		if arg != "" {
			return transform{}, fmt.Errorf("%s takes no argument", op)
		}
		return transform{op: op}, nil
	case "multiply", "divide":
		arg = strings.TrimSpace(arg)
		if _, err := strconv.ParseFloat(arg, 64); err != nil || arg == "" {
			return transform{}, fmt.Errorf("%s: %q is not a number", op, arg)
		}
		if op == "divide" {
			if f, _ := strconv.ParseFloat(arg, 64); f == 0 {
				return transform{}, errors.New("divide: by zero")
			}
		}
		return transform{op: op, factor: arg}, nil
	}
	return transform{}, fmt.Errorf("unknown transform %q (trim, lower, upper, negate, abs, digits, multiply:N, divide:N)", s)
}
