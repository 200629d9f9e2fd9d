package embedded

import (
	"strings"
	"unicode"
)

// statement is what the bridge needs to know about one SQL statement: its
// leading keyword and where its top-level FORMAT / SETTINGS clauses start.
// It is a lexer, not a parser: it skips string literals, quoted identifiers
// and comments so that keywords inside them are not mistaken for clauses.
type statement struct {
	text      string
	kind      string // upper-cased first keyword: SELECT, WITH, INSERT, ...
	formatAt  int    // byte offset of a top-level FORMAT keyword, or -1
	formatEnd int    // offset just after the format name, or -1
	format    string // the format name after FORMAT
	settingAt int    // byte offset of a top-level SETTINGS keyword, or -1
	multi     bool   // more than one non-empty statement separated by ';'
}

// scanSQL lexes s. For an INSERT, lexing stops at the end of the format
// name: what follows is data, not SQL.
func scanSQL(s string) statement {
	st := statement{text: s, formatAt: -1, formatEnd: -1, settingAt: -1}
	depth := 0
	sawSemicolon := false
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '-' && i+1 < len(s) && s[i+1] == '-', c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return st
			}
			i += end + 4
			continue
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(s, i)
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ';':
			sawSemicolon = true
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			word := strings.ToUpper(s[i:j])
			if sawSemicolon {
				st.multi = true
				return st
			}
			if st.kind == "" {
				st.kind = word
			} else if depth == 0 {
				switch word {
				case "FORMAT":
					if st.formatAt < 0 {
						st.formatAt = i
						k := j
						for k < len(s) && unicode.IsSpace(rune(s[k])) {
							k++
						}
						m := k
						for m < len(s) && isIdentPart(s[m]) {
							m++
						}
						st.format, st.formatEnd = s[k:m], m
						if st.kind == "INSERT" {
							return st
						}
						i = m
						continue
					}
				case "SETTINGS":
					if st.settingAt < 0 {
						st.settingAt = i
					}
				}
			}
			i = j
			continue
		default:
			if sawSemicolon && !unicode.IsSpace(rune(c)) {
				st.multi = true
				return st
			}
		}
		if st.kind == "" && c == '(' {
			st.kind = "("
		}
		i++
	}
	return st
}

func skipQuoted(s string, i int) int {
	q := s[i]
	i++
	for i < len(s) {
		switch s[i] {
		case '\\':
			i += 2
			continue
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return i
}

func isIdentStart(c byte) bool {
	return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// streams reports whether chDB's streaming API accepts the statement
// (SELECT-like only; engine-notes.md defect 4).
func (st statement) streams() bool {
	switch st.kind {
	case "SELECT", "WITH", "(":
		return true
	}
	return false
}

// readsOnly reports whether the statement can only read data: one SELECT,
// WITH, SHOW, DESCRIBE, EXPLAIN or EXISTS. Anything else (INSERT, ALTER,
// CREATE, DROP, TRUNCATE, OPTIMIZE, several statements, …) may change it.
func (st statement) readsOnly() bool {
	if st.multi {
		return false
	}
	switch st.kind {
	case "SELECT", "WITH", "(", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS":
		return true
	}
	return false
}

// mutatesSession reports whether the statement changes connection state that
// outlives the request (the HTTP interface has no sessions).
func (st statement) mutatesSession() bool {
	switch st.kind {
	case "SET", "USE":
		return true
	}
	return false
}
