package warehouse

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token of ClickHouse SQL.
type tokKind int

const (
	tokWord   tokKind = iota // bare word: keyword, identifier, number (ClickHouse lexes 1file as one word)
	tokIdent                 // quoted identifier: "x" or `x`
	tokString                // string literal: 'x' or a heredoc $tag$x$tag$
	tokPunct                 // one byte of punctuation or an operator character
)

// sqlToken is one token. Comments and whitespace are dropped.
type sqlToken struct {
	kind tokKind
	text string // the source text of the token
	val  string // a quoted identifier's name, unescaped
	pos  int    // byte offset in the source
}

// is reports whether t is the bare word w (case-insensitively) or the
// punctuation w.
func (t sqlToken) is(w string) bool {
	switch t.kind {
	case tokWord:
		return strings.EqualFold(t.text, w)
	case tokPunct:
		return t.text == w
	}
	return false
}

// name is the identifier a word or quoted identifier stands for.
func (t sqlToken) name() string {
	if t.kind == tokIdent {
		return t.val
	}
	return t.text
}

// tokenize splits s into tokens the way ClickHouse's lexer does where it
// matters for deciding what a statement does: string literals (with
// backslash escapes and doubled quotes), heredocs ($$…$$, $tag$…$tag$),
// quoted identifiers, line comments (--, and # followed by a space or !),
// nested block comments, and words. Whitespace includes every non-ASCII
// character outside quotes: the engine skips Unicode spaces (U+00A0, U+200B,
// U+3000, …) between tokens and accepts no other non-ASCII character there,
// so treating them all as separators can hide no function name.
//
// Anything the lexer cannot close (a string, a quoted identifier, a comment)
// is an error, as it is for the engine.
func tokenize(s string) ([]sqlToken, error) {
	var out []sqlToken
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			i = lineEnd(s, i)
		case c == '#':
			if i+1 < len(s) && s[i+1] != ' ' && s[i+1] != '!' {
				return nil, fmt.Errorf("unexpected %q at offset %d", s[i:i+2], i)
			}
			i = lineEnd(s, i)
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			end, err := blockCommentEnd(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '\'' || c == '"' || c == '`':
			end, val, err := quotedEnd(s, i)
			if err != nil {
				return nil, err
			}
			k := tokIdent
			if c == '\'' {
				k = tokString
			}
			out = append(out, sqlToken{kind: k, text: s[i:end], val: val, pos: i})
			i = end
		case c == '$':
			end, err := heredocEnd(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, sqlToken{kind: tokString, text: s[i:end], pos: i})
			i = end
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			out = append(out, sqlToken{kind: tokWord, text: s[i:j], pos: i})
			i = j
		case c < ' ' || c == 0x7f:
			return nil, fmt.Errorf("control character 0x%02x at offset %d", c, i)
		default:
			out = append(out, sqlToken{kind: tokPunct, text: s[i : i+1], pos: i})
			i++
		}
	}
	return out, nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func lineEnd(s string, i int) int {
	if n := strings.IndexByte(s[i:], '\n'); n >= 0 {
		return i + n + 1
	}
	return len(s)
}

// blockCommentEnd returns the offset after the block comment starting at i;
// block comments nest, as in ClickHouse.
func blockCommentEnd(s string, i int) (int, error) {
	depth := 0
	for j := i; j+1 < len(s); {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j += 2
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j += 2
			if depth == 0 {
				return j, nil
			}
		default:
			j++
		}
	}
	return 0, fmt.Errorf("comment starting at offset %d is not closed", i)
}

// quotedEnd returns the offset after the quoted token starting at i and its
// unescaped content. A backslash escapes the next byte; a doubled quote is
// one quote.
func quotedEnd(s string, i int) (int, string, error) {
	q := s[i]
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 < len(s) {
				j++
				b.WriteByte(s[j])
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				b.WriteByte(q)
				continue
			}
			return j + 1, b.String(), nil
		default:
			b.WriteByte(s[j])
		}
	}
	what := "string"
	if q != '\'' {
		what = "quoted identifier"
	}
	return 0, "", fmt.Errorf("%s starting at offset %d is not closed", what, i)
}

// heredocEnd returns the offset after the heredoc $tag$…$tag$ starting at i.
func heredocEnd(s string, i int) (int, error) {
	j := i + 1
	for j < len(s) && isWordByte(s[j]) {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		return 0, fmt.Errorf("unexpected $ at offset %d", i)
	}
	tag := s[i : j+1]
	n := strings.Index(s[j+1:], tag)
	if n < 0 {
		return 0, fmt.Errorf("heredoc %s starting at offset %d is not closed", tag, i)
	}
	return j + 1 + n + len(tag), nil
}
