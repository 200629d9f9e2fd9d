package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// The console-load step reports the overview alone and beside six console queries, /readyz
// meanwhile, and how many console queries were refused (four of six at once, at least).
func TestConsoleLoad(t *testing.T) {
	st := demoStore(t)
	rep, err := Run(context.Background(), Config{Store: st, Size: "small", PageCold: 2, Steps: []string{"console-load"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.Name] = r
	}
	alone, loaded, ready := got["overview as opened, cold, alone"], got["overview as opened, cold, beside six console queries"], got["/readyz beside six console queries"]
	if alone.N != 2 || loaded.N != 2 || alone.Median <= 0 || loaded.Median <= 0 {
		t.Fatalf("loads: alone %+v, loaded %+v", alone, loaded)
	}
	if loaded.Direct != alone.Median || loaded.Ratio <= 0 {
		t.Errorf("the loaded row compares with the alone one: direct %v, ratio %v", loaded.Direct, loaded.Ratio)
	}
	if ready.N != 2 || ready.Median != 2 {
		t.Errorf("/readyz answered 200 %v times of %d", ready.Median, ready.N)
	}
	var refused int
	if i := strings.Index(ready.Note, "refused at once with 429 "); i < 0 {
		t.Fatalf("note %q", ready.Note)
	} else if _, err := fmt.Sscan(ready.Note[i+len("refused at once with 429 "):], &refused); err != nil || refused < 4 {
		t.Errorf("refused %d (%v), want at least the 4 of the first 6: %q", refused, err, ready.Note)
	}
}
