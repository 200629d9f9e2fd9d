//go:build !unix

package metrics

import "time"

// cpuTime is not measured here: heavy statements then hold every core (Lanes.coresOf).
func cpuTime() (time.Duration, bool) { return 0, false }
