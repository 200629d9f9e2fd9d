package embedded

import (
	"fmt"
	"runtime"
	"unsafe"
)

// conn is one chDB connection. chDB serialises queries on a connection, so a
// conn is used by one goroutine at a time (the pool hands it out).
type conn struct {
	l   *lib
	ptr unsafe.Pointer // chdb_connection* as returned by chdb_connect
	// dirty is set when the connection's session state (settings, current
	// database) may differ from a fresh one and could not be reset; the pool
	// closes such a connection instead of reusing it.
	dirty bool
	db    string // current database of the connection's session
}

func (l *lib) open(args []string, restoreSignals bool) (*conn, error) {
	ptrs := make([]*byte, len(args)+1)
	keep := make([][]byte, len(args))
	for i, a := range args {
		ptrs[i], keep[i] = cstr(a)
	}
	saved, err := saveSignals()
	if err != nil {
		return nil, err
	}
	p := l.connect(int32(len(args)), &ptrs[0])
	if restoreSignals {
		if err := saved.restore(); err != nil {
			return nil, err
		}
	}
	runtime.KeepAlive(keep)
	runtime.KeepAlive(ptrs)
	if p == nil || *(*uintptr)(p) == 0 {
		return nil, fmt.Errorf("chdb_connect %v failed (is another process using this data directory?)", args)
	}
	return &conn{l: l, ptr: p}, nil
}

func (c *conn) handle() uintptr { return *(*uintptr)(c.ptr) }

func (c *conn) close() {
	if c.ptr != nil {
		c.l.closeConn(c.ptr)
		c.ptr = nil
	}
}

// param is one named query parameter ({name:Type} in SQL), value in
// ClickHouse's text escaping as the HTTP interface takes it.
type param struct{ name, value string }

type cargs struct {
	q, f                *byte
	qlen, flen          uintptr
	names, values       []*byte
	nameLens, valueLens []uintptr
	keep                [][]byte
}

func makeArgs(query, format string, params []param) *cargs {
	a := &cargs{}
	var qb, fb []byte
	a.q, qb = cstr(query)
	a.f, fb = cstr(format)
	a.qlen, a.flen = uintptr(len(query)), uintptr(len(format))
	a.keep = append(a.keep, qb, fb)
	for _, p := range params {
		n, nb := cstr(p.name)
		v, vb := cstr(p.value)
		a.names = append(a.names, n)
		a.values = append(a.values, v)
		a.nameLens = append(a.nameLens, uintptr(len(p.name)))
		a.valueLens = append(a.valueLens, uintptr(len(p.value)))
		a.keep = append(a.keep, nb, vb)
	}
	return a
}

func (a *cargs) ptrs() (names **byte, nameLens *uintptr, values **byte, valueLens *uintptr, n uintptr) {
	if len(a.names) == 0 {
		return nil, nil, nil, nil, 0
	}
	return &a.names[0], &a.nameLens[0], &a.values[0], &a.valueLens[0], uintptr(len(a.names))
}

// engineError is an error reported by chDB for a query.
type engineError struct{ msg string }

func (e *engineError) Error() string { return e.msg }

// exec runs a query to completion and returns its whole output.
func (c *conn) exec(query, format string, params []param) ([]byte, error) {
	return c.execLimit(query, format, params, 0)
}

// execLimit is exec for an output of at most limit bytes (0: any): a longer one is refused
// with a *blockTooLarge before it is copied out of chDB's memory.
func (c *conn) execLimit(query, format string, params []param, limit int64) ([]byte, error) {
	a := makeArgs(query, format, params)
	var r uintptr
	if len(params) == 0 {
		r = c.l.queryN(c.handle(), a.q, a.qlen, a.f, a.flen)
	} else {
		n, nl, v, vl, cnt := a.ptrs()
		r = c.l.queryParamsN(c.handle(), a.q, a.qlen, a.f, a.flen, n, nl, v, vl, cnt)
	}
	runtime.KeepAlive(a)
	if r == 0 {
		return nil, &engineError{msg: "chDB returned no result"}
	}
	defer c.l.destroyResult(r)
	if e := c.l.resultError(r); e != nil {
		msg := goString(e)
		if msg != "" {
			return nil, &engineError{msg: msg}
		}
	}
	n := c.l.resultLength(r)
	if limit > 0 && int64(n) > limit {
		return nil, tooLargeBlock(format, unsafe.Slice((*byte)(c.l.resultBuffer(r)), min(n, 20)), int64(n), limit)
	}
	return goBytes(c.l.resultBuffer(r), n), nil
}

// stream is a running streaming query on a connection.
type stream struct {
	c   *conn
	ptr uintptr
	a   *cargs
}

func (c *conn) stream(query, format string, params []param) (*stream, error) {
	a := makeArgs(query, format, params)
	n, nl, v, vl, cnt := a.ptrs()
	r := c.l.streamParamsN(c.handle(), a.q, a.qlen, a.f, a.flen, n, nl, v, vl, cnt)
	runtime.KeepAlive(a)
	if r == 0 {
		return nil, &engineError{msg: "chDB returned no stream"}
	}
	if e := c.l.resultError(r); e != nil {
		if msg := goString(e); msg != "" {
			c.l.destroyResult(r)
			return nil, &engineError{msg: msg}
		}
	}
	return &stream{c: c, ptr: r, a: a}, nil
}

// chunk is one chunk of a stream's output, still in chDB's memory: b is valid until free.
// The bridge writes it from there, so the output is never copied into Go's heap.
type chunk struct {
	l *lib
	r uintptr
	b []byte
}

// free releases the chunk's memory (once; b is then nil).
func (c *chunk) free() {
	if c.r != 0 {
		c.l.destroyResult(c.r)
		c.r, c.b = 0, nil
	}
}

// next returns the next chunk of output, which the caller frees; an empty chunk with a nil
// error is the end of the stream.
func (s *stream) next() (chunk, error) {
	r := s.c.l.streamFetch(s.c.handle(), s.ptr)
	if r == 0 {
		return chunk{}, &engineError{msg: "chDB returned no chunk"}
	}
	if e := s.c.l.resultError(r); e != nil {
		if msg := goString(e); msg != "" {
			s.c.l.destroyResult(r)
			return chunk{}, &engineError{msg: msg}
		}
	}
	ch := chunk{l: s.c.l, r: r}
	if p, n := s.c.l.resultBuffer(r), s.c.l.resultLength(r); p != nil && n > 0 {
		ch.b = unsafe.Slice((*byte)(p), n)
	}
	return ch, nil
}

// cancel stops the stream early (blocks until the current fetch ends).
func (s *stream) cancel() { s.c.l.streamCancel(s.c.handle(), s.ptr) }

// free releases the stream handle.
func (s *stream) free() {
	if s.ptr != 0 {
		s.c.l.destroyResult(s.ptr)
		s.ptr = 0
	}
}
