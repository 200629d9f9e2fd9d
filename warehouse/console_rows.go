package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/shopspring/decimal"
)

// ConsoleRows streams a console query's rows. Next stops after the row limit; Limited then
// says whether the result had more rows.
//
// Over HTTP (the embedded store and servers by default) the console reads the engine's
// Native output itself, one block at a time and only when the rows before it are consumed,
// through a counter that fails a block over the console's limit: Go holds the block being
// read and nothing ahead of it. (clickhouse-go's own reader decodes up to two blocks ahead,
// whatever their size.) Over the native protocol it reads clickhouse-go's rows.
type ConsoleRows struct {
	Statement string
	Columns   []ConsoleColumn

	src     rowSource
	dest    []any
	limit   int
	n       int
	limited bool
	err     error
	cancel  context.CancelFunc
	c       Console
	st      *Store
	parent  context.Context // the caller's context, for the totals query
	hold    bool
	closed  bool
	totals  []any
	tdone   bool
	terr    error
}

// rowSource is where ConsoleRows reads rows from.
type rowSource interface {
	dest() []any                    // pointers to scan a row into (reflect.New of each column's scan type)
	next() (bool, error)            // to the next row; false at the end
	scan(dest []any) error          // the current row into dest
	totals(dest []any) (bool, bool) // the totals row into dest, once the rows are read: (supported, present)
	close() error
}

// Next advances to the next row within the limit.
func (r *ConsoleRows) Next() bool {
	if r.err != nil || r.closed {
		return false
	}
	if r.limit > 0 && r.n >= r.limit {
		if !r.limited {
			ok, err := r.src.next()
			if err != nil {
				r.err = r.c.queryError(err)
			}
			r.limited = ok
		}
		return false
	}
	ok, err := r.src.next()
	if err != nil {
		r.err = r.c.queryError(err)
		return false
	}
	if !ok {
		return false
	}
	if err := r.src.scan(r.dest); err != nil {
		r.err = fmt.Errorf("read-only console: row %d: %w", r.n+1, err)
		return false
	}
	r.n++
	return true
}

// Scan returns pointers to the current row's values (*T, or **T for a
// Nullable column, nil when NULL). They are reused by the next row.
func (r *ConsoleRows) Scan() []any { return r.dest }

// Values returns a copy of the current row (see ConsoleResult for the types).
func (r *ConsoleRows) Values() []any { return valuesOf(r.dest) }

// ScannedValues copies the values of scanned pointers (Scan, Totals) as Values does.
func ScannedValues(dest []any) []any { return valuesOf(dest) }

// valuesOf copies scanned pointers' values (see ConsoleResult for the types).
func valuesOf(dest []any) []any {
	out := make([]any, len(dest))
	for i, d := range dest {
		out[i] = plainValue(reflect.ValueOf(d).Elem())
	}
	return out
}

func plainValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	}
	return v.Interface()
}

// Count is the number of rows read so far.
func (r *ConsoleRows) Count() int { return r.n }

// Limited reports whether the result had more rows than the limit (valid
// once Next returned false).
func (r *ConsoleRows) Limited() bool { return r.limited }

// Limit is the row limit in force (NoRowLimit for none).
func (r *ConsoleRows) Limit() int { return r.limit }

// Err is the error that ended the rows, if any.
func (r *ConsoleRows) Err() error { return r.err }

// Close ends the query (cancelling it if rows are left).
func (r *ConsoleRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.src.close()
	r.cancel()
	return err
}

// rowBytes is about the memory a row of values takes in Go (what Run holds): each value's
// data and its interface.
func rowBytes(row []any) int64 {
	var n int64
	for _, v := range row {
		n += 16 + valueBytes(reflect.ValueOf(v))
	}
	return n + 24
}

func valueBytes(v reflect.Value) int64 {
	if !v.IsValid() {
		return 0
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return 24
	case decimal.Decimal:
		return 40
	case big.Int:
		return 32 + int64(len(x.Bits()))*8
	}
	switch v.Kind() {
	case reflect.String:
		return 16 + int64(v.Len())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 8
		}
		return 8 + valueBytes(v.Elem())
	case reflect.Slice, reflect.Array:
		n := int64(24)
		for i := range v.Len() {
			n += valueBytes(v.Index(i))
		}
		return n
	case reflect.Map:
		n := int64(48)
		it := v.MapRange()
		for it.Next() {
			n += 16 + valueBytes(it.Key()) + valueBytes(it.Value())
		}
		return n
	case reflect.Struct:
		return int64(v.Type().Size()) + 16
	}
	return int64(v.Type().Size())
}

// blockSource reads the Native output of a query (QueryFormat) one block at a time.
type blockSource struct {
	body  io.ReadCloser
	count *byteCounter
	rd    *chproto.Reader
	rev   uint64
	sctx  column.ServerContext
	block *proto.Block
	row   int // the current row of block (0-based); -1 before the first
	done  bool
}

// openBlocks starts stmt with settings (and named args) in Native and reads its first block
// (its columns; none for an empty result). blockLimit bounds each block (0: none).
func openBlocks(ctx context.Context, st *Store, stmt string, settings clickhouse.Settings, blockLimit int64, totalLimit int64, args ...any) (*blockSource, []ConsoleColumn, error) {
	sv, err := st.console.ServerVersion()
	if err != nil {
		return nil, nil, err
	}
	body, err := st.console.QueryFormat(clickhouse.Context(ctx, clickhouse.WithSettings(settings)), "Native", stmt, args...)
	if err != nil {
		return nil, nil, err
	}
	b := &blockSource{body: body, rev: sv.Revision, row: -1,
		count: &byteCounter{r: body, blockLimit: blockLimit, totalLimit: totalLimit},
		sctx: column.ServerContext{Revision: sv.Revision, VersionMajor: sv.Version.Major, VersionMinor: sv.Version.Minor,
			VersionPatch: sv.Version.Patch, Timezone: sv.Timezone}}
	b.rd = chproto.NewReader(b.count)
	if err := b.read(); err != nil {
		body.Close()
		return nil, nil, err
	}
	var cols []ConsoleColumn
	if b.block != nil {
		names := b.block.ColumnsNames()
		for i, c := range b.block.Columns {
			cols = append(cols, ConsoleColumn{Name: names[i], Type: string(c.Type())})
		}
	}
	return b, cols, nil
}

// read decodes the next block; at the end of the output, done.
func (b *blockSource) read() error {
	b.count.startBlock()
	start := b.count.total
	blk := &proto.Block{ServerContext: &b.sctx}
	err := blk.Decode(b.rd, b.rev)
	switch {
	case b.count.err != nil:
		return b.count.err
	case err == nil:
		b.block, b.row = blk, -1
		return nil
	case errors.Is(err, io.EOF) && b.count.total == start:
		b.done = true
		return nil
	}
	return err
}

func (b *blockSource) dest() []any {
	if b.block == nil {
		return nil
	}
	out := make([]any, len(b.block.Columns))
	for i, c := range b.block.Columns {
		out[i] = reflect.New(c.ScanType()).Interface()
	}
	return out
}

func (b *blockSource) next() (bool, error) {
	for {
		if b.block != nil && b.row+1 < b.block.Rows() {
			b.row++
			return true, nil
		}
		if b.done || b.block == nil {
			return false, nil
		}
		if err := b.read(); err != nil {
			return false, err
		}
	}
}

func (b *blockSource) scan(dest []any) error {
	for i, c := range b.block.Columns {
		if err := c.ScanRow(dest[i], b.row); err != nil {
			return fmt.Errorf("column %s: %w", b.block.ColumnsNames()[i], err)
		}
	}
	return nil
}

// totals: Native output carries no totals (ConsoleRows.Totals asks for them apart).
func (b *blockSource) totals([]any) (bool, bool) { return false, false }

func (b *blockSource) close() error {
	b.block = nil
	return b.body.Close()
}

// driverRows reads clickhouse-go's rows: the native protocol, where totals come with them.
type driverRows struct{ rows driver.Rows }

func openDriverRows(ctx context.Context, st *Store, stmt string) (*driverRows, []ConsoleColumn, error) {
	rows, err := st.console.Query(ctx, stmt)
	if err != nil {
		return nil, nil, err
	}
	var cols []ConsoleColumn
	for _, ct := range rows.ColumnTypes() {
		cols = append(cols, ConsoleColumn{Name: ct.Name(), Type: ct.DatabaseTypeName()})
	}
	return &driverRows{rows}, cols, nil
}

func (d *driverRows) dest() []any {
	var out []any
	for _, ct := range d.rows.ColumnTypes() {
		out = append(out, reflect.New(ct.ScanType()).Interface())
	}
	return out
}

func (d *driverRows) next() (bool, error) {
	if d.rows.Next() {
		return true, nil
	}
	return false, d.rows.Err()
}

func (d *driverRows) scan(dest []any) error { return d.rows.Scan(dest...) }

func (d *driverRows) totals(dest []any) (bool, bool) { return true, d.rows.Totals(dest...) == nil }

func (d *driverRows) close() error { return d.rows.Close() }
