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
	// Changed counts the identities this resolution wrote (new ones and those
	// whose customer or rule changed), Removed those it deleted (their record
	// is gone); both 0 when nothing changed.
	Changed int     `json:"changed"`
	Removed int     `json:"removed"`
	Seconds float64 `json:"seconds"`
}

// Resolve reads every customer record and explicit link, groups them and
// brings the identities table to the result, writing only the identities
// that changed. It returns what matched how.
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
	w, err := write(ctx, st, res)
	if err != nil {
		return Stats{}, err
	}
	s := res.stats()
	s.Changed, s.Removed = w.changed, w.removed
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

// writeChunk bounds the keys one removal statement binds.
const writeChunk = 50_000

// written is what write changed in the identities table.
type written struct{ changed, removed int }

// write brings the identities table to the resolution, writing only what
// changed: a node that is new, or whose customer_id or rule differs from its
// current identity, gets a new version; the identities of nodes that no
// longer exist are deleted (one mutation restricted to their keys). A
// resolution that changes nothing writes nothing, so the table's parts and
// mutations, and with them every rollup that reads identities, stay as they
// are. The current identities are read in key order and merged with the
// resolution's sorted nodes, so memory holds the resolution, not a second
// copy of the table.
func write(ctx context.Context, st *warehouse.Store, r *result) (written, error) {
	var out written
	nodes := make([]Node, 0, len(r.canonical))
	for n := range r.canonical {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodeLess(nodes[i], nodes[j]) })

	rows, err := st.Conn.Query(ctx, "SELECT source, source_key, customer_id, rule, matched_at FROM identities FINAL ORDER BY source, source_key")
	if err != nil {
		return out, fmt.Errorf("identity: read identities: %w", err)
	}
	var (
		put    []Node // new or changed, in key order
		gone   []Node // identities of nodes that no longer exist
		latest time.Time
		i      int
	)
	for rows.Next() {
		var cur Node
		var customer, rule string
		var at time.Time
		if err := rows.Scan(&cur.Source, &cur.Key, &customer, &rule, &at); err != nil {
			rows.Close()
			return out, fmt.Errorf("identity: read identities: %w", err)
		}
		if at.After(latest) {
			latest = at
		}
		for i < len(nodes) && nodeLess(nodes[i], cur) {
			put = append(put, nodes[i]) // not identified yet
			i++
		}
		if i < len(nodes) && nodes[i] == cur {
			if r.canonical[cur] != customer || r.rule[cur] != rule {
				put = append(put, cur)
			}
			i++
			continue
		}
		gone = append(gone, cur)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("identity: read identities: %w", err)
	}
	put = append(put, nodes[i:]...)

	if len(put) > 0 {
		// The new versions must win over every current one (ReplacingMergeTree
		// keeps the newest matched_at), also when the clock went back.
		runAt := time.Now().UTC()
		if !runAt.After(latest) {
			runAt = latest.Add(time.Millisecond)
		}
		w, err := st.NewBatchWriter("identities", []string{"source", "source_key", "customer_id", "rule", "matched_at"}, 100_000)
		if err != nil {
			return out, err
		}
		for _, n := range put {
			if err := w.Append(ctx, n.Source, n.Key, r.canonical[n], r.rule[n], runAt); err != nil {
				w.Abort()
				return out, fmt.Errorf("identity: write identities: %w", err)
			}
		}
		if err := w.Flush(); err != nil {
			return out, fmt.Errorf("identity: write identities: %w", err)
		}
		out.changed = len(put)
	}
	// Identities of records that are gone: drop every version of their keys
	// (on a cluster, from the shards' tables: MutationTarget).
	for len(gone) > 0 {
		chunk := gone[:min(len(gone), writeChunk)]
		gone = gone[len(chunk):]
		srcs, keys := make([]string, len(chunk)), make([]string, len(chunk))
		for j, n := range chunk {
			srcs[j], keys[j] = n.Source, n.Key
		}
		q := "ALTER TABLE " + st.MutationTarget("identities") + " DELETE WHERE (source, source_key) IN" +
			" (SELECT tupleElement(t, 1), tupleElement(t, 2) FROM (SELECT arrayJoin(arrayZip({srcs:Array(String)}, {keys:Array(String)})) AS t))" +
			" SETTINGS mutations_sync = 2"
		if err := st.Conn.Exec(ctx, q, clickhouse.Named("srcs", warehouse.StringArray(srcs)), clickhouse.Named("keys", warehouse.StringArray(keys))); err != nil {
			return out, fmt.Errorf("identity: remove %d identities of records that are gone: %w", len(chunk), err)
		}
		out.removed += len(chunk)
	}
	return out, nil
}

// nodeLess orders nodes by source, then key, bytewise: the order of the
// identities table's sorting key.
func nodeLess(a, b Node) bool {
	return a.Source < b.Source || a.Source == b.Source && a.Key < b.Key
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
