package client

import (
	"math/rand/v2"
	"time"
)

// Defaults for the zero values of Backoff.
const (
	DefaultBackoffMin = 250 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
)

// Backoff is how long a Session waits before connecting again:
// exponential from Min to Max, with jitter so that many clients cut off at
// once do not come back at once.
type Backoff struct {
	Min time.Duration // the first wait; 0 means DefaultBackoffMin
	Max time.Duration // the longest wait; 0 means DefaultBackoffMax
}

// Delay returns the wait before connection attempt number attempt
// (0 for the first after a loss): a random duration between half and all
// of Min*2^attempt, at most Max ("equal jitter": never zero, never in
// lockstep). A connection lost within stableConnection (10 s) of being
// made counts as a failed attempt: the waits keep growing.
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi <= 0 {
		hi = DefaultBackoffMax
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(d-half+1)
}
