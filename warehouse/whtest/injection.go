package whtest

import "strings"

// Payload is a named value for injection tests.
type Payload struct{ Name, V string }

// InjectionPayloads are classic SQL injection attempts and values that break naive escaping
// (quotes, backslashes, ClickHouse's parameter syntax, unicode quotes, control characters, a
// 100 kB string). Each must reach SQL only as a value: refused with a precise error, or
// answered correctly.
var InjectionPayloads = []Payload{
	{"drop table", "'; DROP TABLE orders; --"},
	{"tautology", "1 OR 1=1"},
	{"quoted tautology", "' OR '1'='1"},
	{"union", "' UNION SELECT name FROM system.tables --"},
	{"backslash quote", `\'; DROP TABLE orders; --`},
	{"trailing backslash", `email\`},
	{"escape sequences", `a\tb\nc\0d\\`},
	{"null marker", `\N`},
	{"query parameter", "{x:String}"},
	{"contract parameter", "{from:DateTime64(3, 'UTC')}"},
	{"unicode quotes", "’; DROP TABLE orders; -- ‘“”＇"},
	{"nul byte", "email\x00'; DROP TABLE orders; --"},
	{"tab and newline", "email\t\n'; DROP TABLE orders"},
	{"comment", "email/* */--"},
	{"multi statement", "x'); DROP TABLE orders; SELECT ('"},
	{"very long", strings.Repeat("'; DROP TABLE orders; -- ", 4000) + "end"}, // 100 kB
}
