package metrics

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// expr is a derived metric's formula: numbers, metric names, + - * / and
// parentheses. A division by zero, or any input without a value, gives no
// value (nil), never 0 or Inf.
type expr interface {
	eval(get func(string) *float64) *float64
	names(func(string))
}

type num float64
type ref string
type bin struct {
	op   byte
	l, r expr
}
type neg struct{ x expr }

func (n num) eval(func(string) *float64) *float64 { v := float64(n); return &v }
func (num) names(func(string))                    {}
func (r ref) eval(get func(string) *float64) *float64 {
	return get(string(r))
}
func (r ref) names(f func(string)) { f(string(r)) }
func (n neg) eval(get func(string) *float64) *float64 {
	v := n.x.eval(get)
	if v == nil {
		return nil
	}
	w := -*v
	return &w
}
func (n neg) names(f func(string)) { n.x.names(f) }
func (b bin) names(f func(string)) { b.l.names(f); b.r.names(f) }
func (b bin) eval(get func(string) *float64) *float64 {
	l, r := b.l.eval(get), b.r.eval(get)
	if l == nil || r == nil {
		return nil
	}
	var v float64
	switch b.op {
	case '+':
		v = *l + *r
	case '-':
		v = *l - *r
	case '*':
		v = *l * *r
	case '/':
		if *r == 0 {
			return nil
		}
		v = *l / *r
	}
	return &v
}

type exprParser struct {
	s   string
	pos int
}

func parseExpr(s string) (expr, error) {
	p := &exprParser{s: s}
	e, err := p.sum()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos < len(p.s) {
		return nil, fmt.Errorf("unexpected %q at column %d", p.s[p.pos:], p.col())
	}
	return e, nil
}

// col is the column of the parser's position, in characters from 1.
func (p *exprParser) col() int { return utf8.RuneCountInString(p.s[:p.pos]) + 1 }

func (p *exprParser) space() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' || p.pos < len(p.s) && p.s[p.pos] == '\t' {
		p.pos++
	}
}

func (p *exprParser) sum() (expr, error) {
	l, err := p.product()
	if err != nil {
		return nil, err
	}
	for {
		p.space()
		if p.pos >= len(p.s) || (p.s[p.pos] != '+' && p.s[p.pos] != '-') {
			return l, nil
		}
		op := p.s[p.pos]
		p.pos++
		r, err := p.product()
		if err != nil {
			return nil, err
		}
		l = bin{op, l, r}
	}
}

func (p *exprParser) product() (expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		p.space()
		if p.pos >= len(p.s) || (p.s[p.pos] != '*' && p.s[p.pos] != '/') {
			return l, nil
		}
		op := p.s[p.pos]
		p.pos++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = bin{op, l, r}
	}
}

func (p *exprParser) unary() (expr, error) {
	p.space()
	if p.pos >= len(p.s) {
		return nil, fmt.Errorf("unexpected end of formula")
	}
	c := p.s[p.pos]
	switch {
	case c == '-':
		p.pos++
		x, err := p.unary()
		return neg{x}, err
	case c == '(':
		p.pos++
		e, err := p.sum()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			return nil, fmt.Errorf("missing ) at column %d", p.col())
		}
		p.pos++
		return e, nil
	case c >= '0' && c <= '9' || c == '.':
		start := p.pos
		for p.pos < len(p.s) && (p.s[p.pos] >= '0' && p.s[p.pos] <= '9' || p.s[p.pos] == '.') {
			p.pos++
		}
		v, err := strconv.ParseFloat(p.s[start:p.pos], 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", p.s[start:p.pos])
		}
		return num(v), nil
	case isLetter(c):
		start := p.pos
		for p.pos < len(p.s) && (isLetter(p.s[p.pos]) || p.s[p.pos] >= '0' && p.s[p.pos] <= '9') {
			p.pos++
		}
		return ref(p.s[start:p.pos]), nil
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.pos:])
	return nil, fmt.Errorf("unexpected %q at column %d", r, p.col())
}

// isLetter tells whether c may start a metric name (an identifier: ASCII letters, digits, _).
func isLetter(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
