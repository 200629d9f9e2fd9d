package ingest

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is the type of a canonical field, as stored.
type Kind int

// Field kinds. Time is DateTime64(3, 'UTC'); Date is a calendar day; Decimal
// is Decimal(18, 4).
const (
	KString Kind = iota
	KTime
	KDate
	KDecimal
	KInt
	KUInt
	KFloat
	KBool
)

func (k Kind) String() string {
	return [...]string{"string", "time", "date", "decimal", "int", "uint", "float", "bool"}[k]
}

// Field is one field of a canonical entity: the contract a file header or an
// event uses (see issue 3, "Canonical entities").
type Field struct {
	Name     string
	Kind     Kind
	Required bool   // a record without it is rejected
	Nullable bool   // empty is stored as NULL (otherwise as Default or the zero value)
	Default  string // used when the value is empty
	Norm     string // normalisation applied after mapping: lower | upper
	Max      int64  // for ints: inclusive upper bound when > 0
	Bits     int    // for ints: stored width (8, 16, 32, 64); 0 means 64
	// Version marks the column that orders versions in a ReplacingMergeTree
	// (updated_at); empty means the run's start time and it is left out of the
	// content hash so that re-loading identical data is a duplicate.
	Version bool

	// Reference values and types, checked at the door (every path: files, events, demo).
	Ref      *Ref   // a closed list of values (statuses); see Ref
	Currency bool   // an ISO 4217 code (checkCurrency)
	Shape    Shape  // scalar (default), free text, or a JSON object
	NonNeg   string // when set, a negative value is refused (negative_amount); the text says why
	// TextOf names the field whose source text this one keeps as sent, before transforms, map
	// and normalisation, when the mapping gives it nothing (tickets.status_text: the help
	// desk's own word for the state, shown; status is the normalised one metrics read).
	TextOf string
}

// Shape is what a text field may hold.
type Shape int

// Shapes. A scalar field refuses a JSON object or array (not_scalar: the events API passes
// nested values on as their JSON text); a text field (a comment, a description) takes any
// text; an object field takes a JSON object only.
const (
	ShapeScalar Shape = iota
	ShapeText
	ShapeObject
)

// Entity describes a canonical entity and the table it loads into.
type Entity struct {
	Name   string
	Table  string
	Fields []Field
	// ID is the field holding the record id (unique within source); when a
	// record leaves it empty it is derived from Key (see Mapping.Key).
	ID string
	// Key is the natural key: the fields that identify a record within its
	// source. For entities with an ID it is the default for deriving the ID.
	Key []string

	index map[string]int
}

func (e *Entity) field(name string) (Field, int, bool) {
	i, ok := e.index[name]
	if !ok {
		return Field{}, -1, false
	}
	return e.Fields[i], i, true
}

// FieldNames lists the entity's canonical field names in table order.
func (e *Entity) FieldNames() []string {
	out := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f.Name
	}
	return out
}

func s(name string) Field         { return Field{Name: name, Kind: KString} }
func req(f Field) Field           { f.Required = true; return f }
func t(name string) Field         { return Field{Name: name, Kind: KTime} }
func dec(name string) Field       { return Field{Name: name, Kind: KDecimal} }
func lower(f Field) Field         { f.Norm = "lower"; return f }
func upper(f Field) Field         { f.Norm = "upper"; return f }
func null(f Field) Field          { f.Nullable = true; return f }
func def(f Field, v string) Field { f.Default = v; return f }
func text(f Field) Field          { f.Shape = ShapeText; return f }
func cur(name string) Field {
	return Field{Name: name, Kind: KString, Norm: "upper", Required: true, Currency: true}
}
func ref(f Field, r *Ref) Field { f.Ref = r; return f }

// nonNeg marks an amount that is never negative, with why (the reject reason says it).
func nonNeg(f Field, why string) Field { f.NonNeg = why; return f }

// Signs of amounts, decided per field. Never negative: an order's revenue, cost, refund and
// discount, a refund's amount, marketing spend, conversions and their value, a reward's amount
// (money returned is a refund, not a negative sale). Signed: an order line's quantity, unit
// price and amount (returns are negative lines; sources book adjustments as negative prices,
// e.g. Online Retail's "Adjust bad debt"), which lines mode (Lines) sums into its order or refund.
const (
	whyRevenue  = "an order's revenue is what was sold, net of discounts: money given back is a refund (the order's refund field, or a refunds record)"
	whyCost     = "the cost of goods sold is not negative"
	whyRefund   = "it is the amount refunded, a positive number"
	whyDiscount = "it is the amount taken off, a positive number already deducted from revenue"
	whySpend    = "it is what was spent, or earned through it, on the channel: a credit from the platform is a refund of spend, not a negative day"
	whyReward   = "a reward's amount is what the incentive cost"
)

var entities = map[string]*Entity{
	"orders": {Name: "orders", Table: "orders", ID: "order_id", Key: []string{"order_id"}, Fields: []Field{
		req(s("order_id")), s("customer_id"), s("source_customer_id"), req(t("ordered_at")),
		req(nonNeg(dec("revenue"), whyRevenue)), cur("currency"), null(nonNeg(dec("cost"), whyCost)),
		def(nonNeg(dec("refund"), whyRefund), "0"), def(nonNeg(dec("discount"), whyDiscount), "0"),
		def(ref(lower(s("status")), orderStatus), "completed"), s("channel"), s("campaign"), upper(s("country")),
	}},
	"order_lines": {Name: "order_lines", Table: "order_lines", Key: []string{"order_id", "line_no"}, Fields: []Field{
		req(s("order_id")), req(Field{Name: "line_no", Kind: KUInt, Bits: 32}), s("sku"), text(s("description")),
		req(Field{Name: "quantity", Kind: KInt}), req(dec("unit_price")), dec("amount"), cur("currency"),
		req(t("ordered_at")), s("customer_id"),
	}},
	"refunds": {Name: "refunds", Table: "refunds", ID: "refund_id", Key: []string{"order_id", "refunded_at", "amount"}, Fields: []Field{
		s("refund_id"), s("order_id"), s("customer_id"), req(t("refunded_at")), req(nonNeg(dec("amount"), whyRefund)),
		cur("currency"), text(s("reason")),
	}},
	"customers": {Name: "customers", Table: "customers", ID: "customer_id", Key: []string{"customer_id"}, Fields: []Field{
		req(s("customer_id")), lower(s("email")), s("phone"), def(t("first_seen_at"), "1970-01-01T00:00:00Z"),
		s("acquisition_channel"), s("acquisition_campaign"), upper(s("country")), s("segment"),
		{Name: "updated_at", Kind: KTime, Version: true},
	}},
	"marketing_spend": {Name: "marketing_spend", Table: "marketing_spend", Key: []string{"date", "channel", "campaign"}, Fields: []Field{
		req(Field{Name: "date", Kind: KDate}), req(s("channel")), s("campaign"), req(nonNeg(dec("spend"), whySpend)), cur("currency"),
		{Name: "impressions", Kind: KUInt}, {Name: "clicks", Kind: KUInt}, nonNeg(Field{Name: "conversions", Kind: KFloat}, whySpend),
		nonNeg(dec("conversion_value"), whySpend),
	}},
	// An empty channel is the "(none)" bucket, as in the funnel and the channels page: most
	// analytics tools bucket a visit without a channel as "(none)" rather than lose it.
	"touchpoints": {Name: "touchpoints", Table: "touchpoints", ID: "event_id",
		Key: []string{"customer_id", "anonymous_id", "occurred_at", "channel", "campaign", "kind"}, Fields: []Field{
			s("event_id"), s("customer_id"), s("anonymous_id"), req(t("occurred_at")), def(s("channel"), NoChannel), s("campaign"),
			req(lower(s("kind"))), s("utm_source"), s("utm_medium"), s("utm_campaign"), s("utm_content"), s("utm_term"),
			{Name: "properties", Kind: KString, Shape: ShapeObject},
		}},
	"tickets": {Name: "tickets", Table: "tickets", ID: "ticket_id", Key: []string{"ticket_id"}, Fields: []Field{
		req(s("ticket_id")), s("customer_id"), req(t("opened_at")), null(t("first_response_at")), null(t("resolved_at")),
		lower(s("channel")), ref(lower(s("status")), ticketStatus), {Name: "status_text", Kind: KString, Shape: ShapeText, TextOf: "status"},
		lower(s("priority")), s("topic"),
		{Name: "csat", Kind: KUInt, Nullable: true, Max: 5, Bits: 8}, {Name: "updated_at", Kind: KTime, Version: true},
	}},
	"survey_responses": {Name: "survey_responses", Table: "survey_responses", ID: "response_id",
		Key: []string{"customer_id", "answered_at", "kind", "topic"}, Fields: []Field{
			s("response_id"), s("customer_id"), req(t("answered_at")), req(lower(s("kind"))),
			req(Field{Name: "score", Kind: KInt, Bits: 16}), s("topic"), s("channel"), text(s("comment")), s("ticket_id"),
		}},
	"consents": {Name: "consents", Table: "consents", Key: []string{"customer_id", "channel", "purpose", "source_system", "recorded_at"}, Fields: []Field{
		req(s("customer_id")), req(lower(s("channel"))), req(lower(s("purpose"))), req(Field{Name: "granted", Kind: KBool}),
		req(s("source_system")), req(t("recorded_at")),
	}},
	"rewards": {Name: "rewards", Table: "rewards", ID: "reward_id", Key: []string{"customer_id", "granted_at", "kind", "amount"}, Fields: []Field{
		s("reward_id"), req(s("customer_id")), req(t("granted_at")), s("kind"), req(nonNeg(dec("amount"), whyReward)),
		cur("currency"), text(s("reason")), s("campaign"),
	}},
}

// NoChannel is the channel of a touchpoint that has none (stored so: funnel, attribution and the
// channels page read one bucket).
const NoChannel = "(none)"

func init() {
	for _, e := range entities {
		e.index = make(map[string]int, len(e.Fields))
		for i, f := range e.Fields {
			e.index[f.Name] = i
		}
	}
}

// LookupEntity returns the canonical entity called name.
func LookupEntity(name string) (*Entity, error) {
	e, ok := entities[name]
	if !ok {
		return nil, fmt.Errorf("unknown entity %q (one of %s)", name, strings.Join(EntityNames(), ", "))
	}
	return e, nil
}

// EntityNames lists the canonical entities, sorted.
func EntityNames() []string {
	out := make([]string, 0, len(entities))
	for n := range entities {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
