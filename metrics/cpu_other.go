//go:build !unix

package metrics

import "time"

// cpuTime is not measured here: heavy statements then take every core free (Lanes.coresOf).
func cpuTime() (time.Duration, bool) { return 0, false }
