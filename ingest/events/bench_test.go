package events

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkEvents1000: 1,000-record NDJSON batches of touchpoints posted by
// 4 concurrent clients over loopback HTTP; reports events/s and the median
// and p99 time from sending a batch to its acknowledgement (stored).
func BenchmarkEvents1000(b *testing.B) {
	f := newFixture(b, Config{})
	const clients, batch = 4, 1000
	batches := max(b.N, 40)
	bodies := make([]string, batches)
	for i := range bodies {
		var sb strings.Builder
		for j := range batch {
			n := i*batch + j
			fmt.Fprintf(&sb, `{"event_id":"b%d","customer_id":"C%d","occurred_at":"2026-03-%02dT10:%02d:00Z","channel":"email","campaign":"spring","kind":"open"}`+"\n", n, n%5000, 1+n%28, n%60)
		}
		bodies[i] = sb.String()
	}
	var mu sync.Mutex
	var lat []time.Duration
	next := make(chan string)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range next {
				req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/events/touchpoints", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+f.token)
				t0 := time.Now()
				resp, err := http.DefaultClient.Do(req)
				d := time.Since(t0)
				if err != nil || resp.StatusCode != 200 {
					b.Errorf("post: %v %v", err, resp)
					return
				}
				resp.Body.Close()
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	for _, body := range bodies {
		next <- body
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(batches*batch)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ack_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99_ack_ms")
	if n := f.count(b, "SELECT count() FROM touchpoints FINAL"); n != uint64(batches*batch) {
		b.Fatalf("%d touchpoints stored, want %d", n, batches*batch)
	}
}
