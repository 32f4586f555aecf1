//go:build !linux

package bench

import "time"

const cpuClock = "wall time (no thread CPU clock on this system)"

var start = time.Now()

// threadCPU falls back to wall time where the thread CPU clock is not wired up.
func threadCPU() time.Duration { return time.Since(start) }
