package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// docs/config.md is what the code generates: a key added, removed or
// changed in config.go without `make config-doc` fails here.
func TestConfigDocUpToDate(t *testing.T) {
	var got bytes.Buffer
	if err := writeConfigDoc(&got); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatalf("%v: run `make config-doc` and commit docs/config.md", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		g, w := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		line := 0
		for line < min(len(g), len(w)) && g[line] == w[line] {
			line++
		}
		at := func(l []string) string {
			if line < len(l) {
				return l[line]
			}
			return "(end of file)"
		}
		t.Fatalf("docs/config.md is out of date with cmd/converge/config.go: run `make config-doc` and commit it.\nline %d is\n  %s\nthe code generates\n  %s", line+1, at(w), at(g))
	}
}

// Every key `converge config keys` prints is in the reference with the same
// environment variable and default.
func TestConfigDocMatchesConfigKeys(t *testing.T) {
	out, err := run(t, context.Background(), "config", "keys")
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if err := writeConfigDoc(&doc); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")[1:] // after the header
	if len(lines) != len(defaults) || len(lines) < 20 {
		t.Fatalf("config keys printed %d keys, defaults has %d", len(lines), len(defaults))
	}
	for _, l := range lines {
		f := strings.Fields(l)
		key, env, def := f[0], f[1], "empty"
		if len(f) > 2 {
			def = "`" + strings.Join(f[2:], " ") + "`"
		}
		row := "| `" + key + "`"
		i := strings.Index(doc.String(), row)
		if i < 0 {
			t.Errorf("%s: not in the reference", key)
			continue
		}
		rowText, _, _ := strings.Cut(doc.String()[i:], "\n")
		if !strings.Contains(rowText, "| `"+env+"` | "+def+" | ") {
			t.Errorf("%s: config keys says %s, default %s; the reference row is\n%s", key, env, def, rowText)
		}
	}
}

// A key without a description (or a description of no key) fails the
// generation, naming it.
func TestConfigDocNeedsDescriptions(t *testing.T) {
	defaults["zz.new_key"] = "x"
	keyDocs["zz.gone"] = "y"
	t.Cleanup(func() { delete(defaults, "zz.new_key"); delete(keyDocs, "zz.gone") })
	var b bytes.Buffer
	err := writeConfigDoc(&b)
	for _, want := range []string{"no description for", "zz.new_key", "zz.gone (documented, but not a key)", "section zz (sectionDocs)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}
