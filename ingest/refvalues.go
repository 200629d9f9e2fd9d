package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Ref is a closed list of the values a field holds (a reference list). A value is checked after
// the mapping and the field's normalisation (lower case for statuses): a listed value or alias
// is stored as the listed value; anything else rejects the record (code bad_value) with the
// list in the reason. Presets map their sources' values onto the list (ingest/presets/*.yaml);
// ParseMapping checks that the values a mapping produces (value, map, other, default) are in it.
type Ref struct {
	Name    string            // what a value is, for messages: "status of an order"
	Values  []string          // the values, in the order messages list them
	Aliases map[string]string // other spellings accepted for a value (any path, canonical included)
}

// Canon returns the listed value v stands for, and whether there is one.
func (r *Ref) Canon(v string) (string, bool) {
	for _, x := range r.Values {
		if v == x {
			return v, true
		}
	}
	if x, ok := r.Aliases[v]; ok {
		return x, true
	}
	return "", false
}

func (r *Ref) check(field, v string) (string, *FieldError) {
	if c, ok := r.Canon(v); ok {
		return c, nil
	}
	return "", ferr(field, "bad_value", "%q is not a %s (one of %s); map the source's values in the mapping (fields.%s.map)",
		v, r.Name, strings.Join(r.Values, ", "), field)
}

// The statuses metrics read. Orders: cancelled orders are left out of revenue and counts, the
// others count (refunded ones too: their refunds are deducted by revenue_net). Tickets: the
// service states of every help desk, which keep the source's own word in status_text.
var (
	orderStatus = &Ref{Name: "status of an order", Values: []string{"completed", "pending", "cancelled", "refunded"},
		Aliases: map[string]string{"canceled": "cancelled", "complete": "completed"}}
	ticketStatus = &Ref{Name: "status of a ticket", Values: []string{"open", "pending", "resolved", "closed"},
		Aliases: map[string]string{"new": "open", "reopened": "open", "hold": "pending", "on-hold": "pending",
			"on hold": "pending", "on_hold": "pending", "solved": "resolved"}}
)

// composite names what v is when it is a JSON object or array (how the events API passes a
// nested value along), which no scalar field takes; "" otherwise.
func composite(v string) string {
	if len(v) < 2 {
		return ""
	}
	switch {
	case v[0] == '{' && v[len(v)-1] == '}' && json.Valid([]byte(v)):
		return "a JSON object"
	case v[0] == '[' && v[len(v)-1] == ']' && json.Valid([]byte(v)):
		return "a JSON array"
	}
	return ""
}

// checkShape refuses a composite value where f expects a scalar, and, for a JSON field, anything
// but a JSON object.
func checkShape(f Field, v string) *FieldError {
	switch f.Shape {
	case ShapeText:
		return nil
	case ShapeObject:
		if v != "" && composite(v) != "a JSON object" {
			return ferr(f.Name, "not_scalar", "%s is not a JSON object (the field holds the record's other properties as one)", quoteShort(v))
		}
		return nil
	}
	if what := composite(v); what != "" {
		return ferr(f.Name, "not_scalar", "%s where %s is expected: %s", what, f.Kind.article(), quoteShort(v))
	}
	return nil
}

// quoteShort quotes v, cut to 60 bytes (a reason names the value, it does not repeat the record).
func quoteShort(v string) string {
	if len(v) <= 60 {
		return fmt.Sprintf("%q", v)
	}
	cut := 60
	for cut > 0 && v[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return fmt.Sprintf("%q…", v[:cut])
}

// article is the kind as a phrase: "a text value", "a decimal number".
func (k Kind) article() string {
	return [...]string{"a text value", "a time", "a date", "a decimal number", "a whole number", "a whole number",
		"a number", "a yes/no value"}[k]
}
