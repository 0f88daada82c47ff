package jsstore

import "time"

// SetSweepGrace sets the grace before an earlier run's messages are swept.
func SetSweepGrace(d time.Duration) func() {
	old := sweepGrace
	sweepGrace = d
	return func() { sweepGrace = old }
}
