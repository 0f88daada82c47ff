package broker

import (
	"runtime/debug"
	"time"
)

// Memory after a burst of connections.
//
// Connecting a client makes garbage: the packets, buffers and goroutine
// stacks that handled its CONNECT and SUBSCRIBE. The runtime collects it
// once the heap has grown to twice what was live after the last
// collection, and keeps the pages it freed for the heap to grow into
// again: it returns to the system only what lies beyond that goal. An
// idle broker allocates little, so after a storm of connections it would
// hold, for as long as it stays idle, up to twice the heap its
// connections need (19,000 idle connections with a subscription each:
// 1.9 KB of resident memory each, 1.55 KB once collected and returned).
// So once at least trimBurst connections, and an eighth of those
// connected, have been accepted since the last time, and none in the last
// trimTick, the broker collects and returns what is free to the system at
// once: one collection per burst, none while connections keep coming.
const (
	trimTick  = 250 * time.Millisecond
	trimBurst = 1000
)

// trimmer returns the memory a burst of connections left free.
func (b *Broker) trimmer() {
	defer b.sweeping.Done()
	t := time.NewTicker(trimTick)
	defer t.Stop()
	last := b.stats.connectionsTotal.Load() // at the last trim
	prev := last                            // a tick ago
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		n := b.stats.connectionsTotal.Load()
		if n == prev && n-last >= max(trimBurst, b.stats.connections.Load()/8) {
			debug.FreeOSMemory()
			last = n
		}
		prev = n
	}
}
