package ingest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/converge-dev/converge/warehouse"
)

// LoadFile loads one file as one run. The returned summary is complete even
// when err is not nil (err is then also in Summary.Error).
func LoadFile(ctx context.Context, st *warehouse.Store, path string, opts Options, stats func(*Stats)) (Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return Summary{File: path, Status: "failed", Error: err.Error()}, err
	}
	defer f.Close()
	l, err := NewLoader(ctx, st, opts, path)
	if err != nil {
		return Summary{File: path, Status: "failed", Error: err.Error()}, err
	}
	if stats != nil {
		stats(&l.Stats)
	}
	runErr := l.readAll(ctx, f, path)
	if runErr != nil {
		runErr = fmt.Errorf("ingest %s: %w", path, runErr)
	}
	return l.Close(ctx, runErr)
}

// Load reads a whole stream (CSV, TSV or NDJSON, gzip or not) into the run.
func (l *Loader) Load(ctx context.Context, r io.Reader, name string) error {
	return l.readAll(ctx, r, name)
}

func (l *Loader) readAll(ctx context.Context, r io.Reader, name string) error {
	in, h, counted, err := openInput(r, &l.Stats.Bytes)
	if err != nil {
		return err
	}
	format := l.opts.Format
	if format == "" {
		format = l.m.Format
	}
	if format == "" {
		format = formatFromName(name)
	}
	var src source
	switch format {
	case "csv", "tsv":
		cs, err := newCSVSource(in, l.m, format, l.opts.MaxRecordBytes)
		if err != nil {
			return err
		}
		src = cs
	case "ndjson":
		src = newNDJSONSource(in, l.opts.MaxRecordBytes)
	default:
		return fmt.Errorf("format %q is not csv, tsv or ndjson", format)
	}
	if err := l.setColumns(src.columns()); err != nil {
		return err
	}
	if err := l.checkHeader(); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, line, raw, err := src.next()
		if err == io.EOF {
			break
		}
		var re *recordError
		if errors.As(err, &re) {
			l.sum.Read++
			l.Stats.Read.Add(1)
			if err := l.reject(re.line, re.field, re.code, re.reason, re.raw); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := l.addRecord(ctx, rec, line, raw); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	_, _ = io.Copy(io.Discard, counted) // hash the rest (anything after the gzip stream)
	l.sum.Checksum = hex.EncodeToString(h.Sum(nil))
	return nil
}

func formatFromName(name string) string {
	n := strings.ToLower(strings.TrimSuffix(strings.ToLower(name), ".gz"))
	switch filepath.Ext(n) {
	case ".tsv", ".tab":
		return "tsv"
	case ".ndjson", ".jsonl", ".json":
		return "ndjson"
	}
	return "csv"
}
