// Package identity resolves the people behind source records into canonical
// customers: records from different sources for one person become one
// customer_id by declared rules, recorded in the identities table with the
// rule that matched.
//
// Rules, in the order they are tried when explaining a match:
//   - explicit: a link declared in identity_links (source:key = source:key);
//   - email: the same e-mail address, trimmed and lower-cased;
//   - phone: the same number in E.164 (+4915112345678), national numbers
//     read with the calling code of the record's country (or the default);
//   - source_id: a record matched by nothing else is its own customer.
//
// Resolution is a pure function of the customers and links in the store, so
// it is deterministic and can be re-run at any time: the canonical id of a
// group is the source key of its anchor, the member of the most preferred
// source (Rules.SourcePriority), then the one first seen earliest, then by
// source and key; when two groups' anchors share a key, both are written as
// "source:key". Facts keep their source ids; the *_resolved views map them
// to canonical ids.
package identity

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
)

// Rules configure resolution.
type Rules struct {
	// SourcePriority lists sources whose keys anchor a group first; among
	// the others the record first seen earliest anchors.
	SourcePriority []string
	// DefaultCountry (ISO 3166 alpha-2) reads national phone numbers of
	// records without a country; default DE.
	DefaultCountry string
}

// Node is one identity: a source and the key it uses for the person.
type Node struct {
	Source, Key string
}

func (n Node) String() string { return n.Source + ":" + n.Key }

type member struct {
	Node
	email, phone string
	firstSeen    time.Time
}

// Stats describe a resolution.
type Stats struct {
	Identities   int            `json:"identities"`
	Customers    int            `json:"customers"`
	MultiSource  int            `json:"customers_with_several_sources"`
	ByRule       map[string]int `json:"by_rule"`
	BySource     map[string]int `json:"by_source"`
	LargestGroup int            `json:"largest_group"`
	Seconds      float64        `json:"seconds"`
}

// Resolve reads every customer record and explicit link, groups them and
// writes the identities table. It returns what matched how.
func Resolve(ctx context.Context, st *warehouse.Store, rules Rules) (Stats, error) {
	start := time.Now()
	if rules.DefaultCountry == "" {
		rules.DefaultCountry = "DE"
	}
	members, err := readCustomers(ctx, st, rules)
	if err != nil {
		return Stats{}, err
	}
	links, err := readLinks(ctx, st)
	if err != nil {
		return Stats{}, err
	}
	res := resolve(members, links, rules)
	if err := write(ctx, st, res); err != nil {
		return Stats{}, err
	}
	s := res.stats()
	s.Seconds = time.Since(start).Seconds()
	return s, nil
}

func readCustomers(ctx context.Context, st *warehouse.Store, rules Rules) ([]member, error) {
	rows, err := st.Conn.Query(ctx, "SELECT source, customer_id, email, phone, country, first_seen_at FROM customers FINAL")
	if err != nil {
		return nil, fmt.Errorf("identity: read customers: %w", err)
	}
	defer rows.Close()
	var out []member
	for rows.Next() {
		var m member
		var phone, country string
		if err := rows.Scan(&m.Source, &m.Key, &m.email, &phone, &country, &m.firstSeen); err != nil {
			return nil, fmt.Errorf("identity: read customers: %w", err)
		}
		m.email = NormalizeEmail(m.email)
		if country == "" {
			country = rules.DefaultCountry
		}
		m.phone = NormalizePhone(phone, country)
		out = append(out, m)
	}
	return out, rows.Err()
}

func readLinks(ctx context.Context, st *warehouse.Store) ([][2]Node, error) {
	rows, err := st.Conn.Query(ctx, "SELECT source, source_key, linked_source, linked_key FROM identity_links FINAL WHERE NOT removed")
	if err != nil {
		return nil, fmt.Errorf("identity: read identity_links: %w", err)
	}
	defer rows.Close()
	var out [][2]Node
	for rows.Next() {
		var a, b Node
		if err := rows.Scan(&a.Source, &a.Key, &b.Source, &b.Key); err != nil {
			return nil, err
		}
		out = append(out, [2]Node{a, b})
	}
	return out, rows.Err()
}

// Link declares that two source identities are one person.
func Link(ctx context.Context, st *warehouse.Store, a, b Node) error {
	if a.Source == "" || a.Key == "" || b.Source == "" || b.Key == "" {
		return fmt.Errorf("identity link: both sides need source:key (got %q and %q)", a, b)
	}
	return st.Conn.Exec(ctx, "INSERT INTO identity_links (source, source_key, linked_source, linked_key) VALUES ({a:String}, {ak:String}, {b:String}, {bk:String})",
		clickhouse.Named("a", a.Source), clickhouse.Named("ak", a.Key), clickhouse.Named("b", b.Source), clickhouse.Named("bk", b.Key))
}

// ParseNode reads source:key.
func ParseNode(s string) (Node, error) {
	src, key, ok := strings.Cut(s, ":")
	if !ok || src == "" || key == "" {
		return Node{}, fmt.Errorf("%q is not source:key", s)
	}
	return Node{src, key}, nil
}

// result is a resolution: each node's canonical id and the rule that put it there.
type result struct {
	canonical map[Node]string
	rule      map[Node]string
	groups    map[string][]Node
}

func (r *result) stats() Stats {
	s := Stats{ByRule: map[string]int{}, BySource: map[string]int{}, Identities: len(r.canonical), Customers: len(r.groups)}
	for n, rule := range r.rule {
		s.ByRule[rule]++
		s.BySource[n.Source]++
	}
	for _, g := range r.groups {
		srcs := map[string]bool{}
		for _, n := range g {
			srcs[n.Source] = true
		}
		if len(srcs) > 1 {
			s.MultiSource++
		}
		s.LargestGroup = max(s.LargestGroup, len(g))
	}
	return s
}

type edge struct {
	to   int
	rule string
}

// resolve groups members (union-find over the rules' keys) and picks each
// group's anchor and the rule that reached every member from it.
func resolve(members []member, links [][2]Node, rules Rules) *result {
	// One index per node; a node may appear once per (source, key).
	index := map[Node]int{}
	var nodes []member
	add := func(m member) int {
		if i, ok := index[m.Node]; ok {
			// Keep the earliest sighting's attributes.
			if m.firstSeen.Before(nodes[i].firstSeen) {
				nodes[i].firstSeen = m.firstSeen
			}
			if nodes[i].email == "" {
				nodes[i].email = m.email
			}
			if nodes[i].phone == "" {
				nodes[i].phone = m.phone
			}
			return i
		}
		index[m.Node] = len(nodes)
		nodes = append(nodes, m)
		return len(nodes) - 1
	}
	for _, m := range members {
		add(m)
	}
	adj := make([][]edge, len(nodes))
	connect := func(a, b int, rule string) {
		if a == b {
			return
		}
		for len(adj) < len(nodes) {
			adj = append(adj, nil)
		}
		adj[a] = append(adj[a], edge{b, rule})
		adj[b] = append(adj[b], edge{a, rule})
	}
	for _, l := range links {
		a, b := add(member{Node: l[0]}), add(member{Node: l[1]})
		connect(a, b, "explicit")
	}
	for len(adj) < len(nodes) {
		adj = append(adj, nil)
	}
	// Same e-mail, same phone: chain the members of each key.
	byKey := func(key func(member) string, rule string) {
		first := map[string]int{}
		for i, m := range nodes {
			k := key(m)
			if k == "" {
				continue
			}
			if j, ok := first[k]; ok {
				connect(j, i, rule)
			} else {
				first[k] = i
			}
		}
	}
	byKey(func(m member) string { return m.email }, "email")
	byKey(func(m member) string { return m.phone }, "phone")

	prio := map[string]int{}
	for i, s := range rules.SourcePriority {
		prio[s] = i - len(rules.SourcePriority) // listed sources sort first
	}
	less := func(a, b member) bool {
		if prio[a.Source] != prio[b.Source] {
			return prio[a.Source] < prio[b.Source]
		}
		// An unknown first sighting (stored as the epoch) sorts after every known one.
		if ka, kb := a.firstSeen.Unix() > 0, b.firstSeen.Unix() > 0; ka != kb {
			return ka
		}
		if !a.firstSeen.Equal(b.firstSeen) {
			return a.firstSeen.Before(b.firstSeen)
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Key < b.Key
	}
	// Connected components, each explored from its anchor so every member
	// records the rule of the edge that reached it (explicit first).
	seen := make([]bool, len(nodes))
	type group struct {
		anchor  int
		members []int
		rules   map[int]string
	}
	var groups []group
	for i := range nodes {
		if seen[i] {
			continue
		}
		var comp []int
		stack := []int{i}
		seen[i] = true
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			comp = append(comp, n)
			for _, e := range adj[n] {
				if !seen[e.to] {
					seen[e.to] = true
					stack = append(stack, e.to)
				}
			}
		}
		anchor := comp[0]
		for _, n := range comp[1:] {
			if less(nodes[n], nodes[anchor]) {
				anchor = n
			}
		}
		g := group{anchor: anchor, members: comp, rules: map[int]string{anchor: "source_id"}}
		// Breadth-first from the anchor, preferring explicit, then email, then phone edges.
		frontier := []int{anchor}
		rank := map[string]int{"explicit": 0, "email": 1, "phone": 2}
		for len(frontier) > 0 {
			var next []int
			for _, n := range frontier {
				es := append([]edge(nil), adj[n]...)
				sort.SliceStable(es, func(a, b int) bool { return rank[es[a].rule] < rank[es[b].rule] })
				for _, e := range es {
					if _, ok := g.rules[e.to]; !ok {
						g.rules[e.to] = e.rule
						next = append(next, e.to)
					}
				}
			}
			sort.Ints(next)
			frontier = next
		}
		groups = append(groups, g)
	}
	// Canonical ids: the anchor's key, qualified by its source where two
	// anchors share a key.
	keyCount := map[string]int{}
	for _, g := range groups {
		keyCount[nodes[g.anchor].Key]++
	}
	res := &result{canonical: map[Node]string{}, rule: map[Node]string{}, groups: map[string][]Node{}}
	for _, g := range groups {
		a := nodes[g.anchor]
		id := a.Key
		if keyCount[id] > 1 {
			id = a.Source + ":" + a.Key
		}
		for _, n := range g.members {
			res.canonical[nodes[n].Node] = id
			res.rule[nodes[n].Node] = g.rules[n]
			res.groups[id] = append(res.groups[id], nodes[n].Node)
		}
	}
	return res
}

// write replaces the identities table's content with the resolution: every
// node gets a new version; nodes that no longer exist are removed.
func write(ctx context.Context, st *warehouse.Store, r *result) error {
	runAt := time.Now().UTC()
	w, err := st.NewBatchWriter("identities", []string{"source", "source_key", "customer_id", "rule", "matched_at"}, 100_000)
	if err != nil {
		return err
	}
	nodes := make([]Node, 0, len(r.canonical))
	for n := range r.canonical {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool {
		return nodes[i].Source < nodes[j].Source || nodes[i].Source == nodes[j].Source && nodes[i].Key < nodes[j].Key
	})
	for _, n := range nodes {
		if err := w.Append(ctx, n.Source, n.Key, r.canonical[n], r.rule[n], runAt); err != nil {
			w.Abort()
			return fmt.Errorf("identity: write identities: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("identity: write identities: %w", err)
	}
	// Identities of records that are gone keep an older version: drop them
	// (on a cluster, from the shards' tables: MutationTarget).
	if err := st.Conn.Exec(ctx, "ALTER TABLE "+st.MutationTarget("identities")+" DELETE WHERE matched_at < {at:DateTime64(3, 'UTC')} SETTINGS mutations_sync = 2",
		clickhouse.Named("at", runAt.Format("2006-01-02 15:04:05.000"))); err != nil {
		return fmt.Errorf("identity: remove stale identities: %w", err)
	}
	return nil
}

// NormalizeEmail trims and lower-cases an address; anything without a single
// @ with text on both sides is not an address and yields "".
func NormalizeEmail(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 || strings.ContainsAny(s, " \t") {
		return ""
	}
	return s
}

// callingCodes are the country calling codes national numbers are read with.
var callingCodes = map[string]string{
	"DE": "49", "FR": "33", "NL": "31", "AT": "43", "BE": "32", "IT": "39", "ES": "34", "DK": "45",
	"GB": "44", "UK": "44", "IE": "353", "CH": "41", "SE": "46", "NO": "47", "FI": "358", "PL": "48",
	"PT": "351", "CZ": "420", "US": "1", "CA": "1", "AU": "61", "NZ": "64",
}

// NormalizePhone returns a number in E.164 (+ and 8 to 15 digits), reading
// national numbers (leading 0) with country's calling code, or "" when the
// text is not a phone number.
func NormalizePhone(s, country string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	plus := strings.HasPrefix(s, "+")
	var d strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			d.WriteRune(r)
		case strings.ContainsRune(" -./()", r) || (r == '+' && d.Len() == 0):
		default:
			return "" // letters, extensions: not a plain number
		}
	}
	digits := d.String()
	switch {
	case plus:
	case strings.HasPrefix(digits, "00"):
		digits = digits[2:]
	case strings.HasPrefix(digits, "0"):
		cc, ok := callingCodes[strings.ToUpper(country)]
		if !ok {
			return ""
		}
		digits = cc + digits[1:]
	default:
		// No prefix at all: already international without the plus only if long enough.
		if len(digits) < 11 {
			return ""
		}
	}
	if len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return ""
	}
	return "+" + digits
}
