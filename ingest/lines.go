package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// orderAgg collects one order of a lines source (see Lines).
type orderAgg struct {
	vals  []any // orders fields, from the order's first accepted line
	strs  []string
	line  int64 // first line of the order
	raw   fmt.Stringer
	sum   decimal.Decimal
	pos   uint32              // rows seen for this order (line_no of the last)
	lines map[uint64]struct{} // content of its lines, for the identical-line warning
}

// addLine handles one row of a lines source: an order line, aggregated into its order.
func (l *Loader) addLine(ctx context.Context, rec []string, line int64, raw fmt.Stringer) error {
	lc := l.lineCnv
	_, oi, _ := lc.ent.field("order_id")
	oid, fe := lc.raw(lc.specs[oi], rec)
	if fe != nil {
		return l.reject(line, fe.Field, fe.Code, fe.Reason, raw)
	}
	if oid == "" {
		return l.reject(line, "order_id", "missing_field", "required field is empty", raw)
	}
	agg := l.orders[oid]
	if agg == nil {
		agg = &orderAgg{line: line, lines: map[uint64]struct{}{}}
		l.orders[oid] = agg
		l.orderSeq = append(l.orderSeq, oid)
	}
	agg.pos++
	pos := agg.pos
	vals, strs, fe := l.convert(lc, rec)
	if fe != nil {
		return l.reject(line, fe.Field, fe.Code, fe.Reason, raw)
	}
	if agg.vals == nil {
		ov, os, fe := l.convert(l.conv, rec)
		if fe != nil {
			return l.reject(line, fe.Field, fe.Code, fe.Reason, raw)
		}
		agg.vals, agg.strs, agg.raw = ov, os, rawString(raw.String())
	}
	e := lc.ent
	idx := func(n string) int { _, i, _ := e.field(n); return i }
	// inherit order-level fields a later line leaves empty (Shopify repeats them on the first line only)
	for _, n := range []string{"currency", "ordered_at", "customer_id"} {
		i := idx(n)
		if strs[i] == "" {
			_, oi, _ := l.conv.ent.field(n)
			vals[i], strs[i] = agg.vals[oi], agg.strs[oi]
		}
		if strs[i] == "" && n != "customer_id" {
			return l.reject(line, n, "missing_field", "required field is empty (on the line and on its order)", raw)
		}
	}
	if i := idx("line_no"); strs[i] == "0" || strs[i] == "" {
		vals[i], strs[i] = pos, decimal.NewFromInt(int64(pos)).String()
	}
	amount := idx("amount")
	if !lc.specs[amount].mapped {
		q := decimal.NewFromInt(vals[idx("quantity")].(int64))
		a := q.Mul(vals[idx("unit_price")].(decimal.Decimal)).Round(4)
		vals[amount], strs[amount] = a, a.StringFixed(4)
	}
	// identical line within the order (all but line_no)
	ln := idx("line_no")
	saved := strs[ln]
	strs[ln] = ""
	h := contentHash(strs)
	strs[ln] = saved
	if _, dup := agg.lines[h]; dup {
		l.identical++
	} else {
		agg.lines[h] = struct{}{}
	}
	agg.sum = agg.sum.Add(vals[amount].(decimal.Decimal))
	return l.push(ctx, l.tables["order_lines"], vals, strs, line, raw)
}

// finishOrders writes one orders or refunds row per order of a lines source.
func (l *Loader) finishOrders(ctx context.Context) error {
	oe := l.conv.ent
	re := entities["refunds"]
	oidx := func(n string) int { _, i, _ := oe.field(n); return i }
	prefix := l.m.Lines.RefundPrefix
	revMapped := l.conv.specs[oidx("revenue")].mapped
	for _, oid := range l.orderSeq {
		agg := l.orders[oid]
		if agg.vals == nil {
			continue // every line was rejected
		}
		if prefix != "" && strings.HasPrefix(oid, prefix) {
			vals := make([]any, len(re.Fields))
			strs := make([]string, len(re.Fields))
			amt := agg.sum.Neg()
			for i, f := range re.Fields {
				switch f.Name {
				case "refund_id":
					vals[i], strs[i] = oid, oid
				case "order_id":
					vals[i], strs[i] = "", "" // the source does not say which invoice is cancelled
				case "customer_id", "currency":
					vals[i], strs[i] = agg.vals[oidx(f.Name)], agg.strs[oidx(f.Name)]
				case "refunded_at":
					vals[i], strs[i] = agg.vals[oidx("ordered_at")], agg.strs[oidx("ordered_at")]
				case "amount":
					vals[i], strs[i] = amt, amt.StringFixed(4)
				case "reason":
					vals[i], strs[i] = l.m.Lines.RefundReason, l.m.Lines.RefundReason
				}
			}
			if err := l.push(ctx, l.tables["refunds"], vals, strs, agg.line, agg.raw); err != nil {
				return err
			}
			continue
		}
		vals := append([]any(nil), agg.vals...)
		strs := append([]string(nil), agg.strs...)
		if !revMapped {
			i := oidx("revenue")
			vals[i], strs[i] = agg.sum, agg.sum.StringFixed(4)
		}
		if fe := l.finish(entities["orders"], vals, strs); fe != nil {
			return fe
		}
		if err := l.push(ctx, l.tables["orders"], vals, strs, agg.line, agg.raw); err != nil {
			return err
		}
	}
	return nil
}
