package broker

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestRetainedTreeScale measures the retained tree alone with
// TERN_RETAINED_SCALE messages (the topics of TestRetainedScale; skipped
// when unset): heap per message, without the store, and how long a '#'
// subscription's snapshot takes and how long retained publishes beside
// it wait for the tree's lock.
func TestRetainedTreeScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TERN_RETAINED_SCALE"))
	if n <= 0 {
		t.Skip("set TERN_RETAINED_SCALE (e.g. 1000000) to run")
	}
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	topic := func(i int) string {
		base := "site/" + strconv.Itoa(i/10000) + "/dev/" + strconv.Itoa(i)
		switch i % 3 {
		case 1:
			return base + "/temp"
		case 2:
			return base + "/sensor/0"
		}
		return base
	}
	before := heap()
	msgs := make([]*Message, n) // the messages themselves, as a store load would make them
	for i := range msgs {
		msgs[i] = &Message{Topic: topic(i), Payload: make([]byte, 64), QoS: 1, Retain: true}
	}
	withMsgs := heap()
	var r retained
	for _, m := range msgs {
		r.set(m, nil, retainLimits{})
	}
	msgs = nil
	after := heap()
	t.Logf("%d retained: messages %.0f B each, the tree %.0f B each, %.0f B in all (limit counts %.0f B)",
		n, float64(withMsgs-before)/float64(n), float64(after-withMsgs)/float64(n), float64(after-before)/float64(n), float64(r.bytes)/float64(n))
	for _, filter := range []string{"#", "site/+/dev/+/sensor/#", "site/7/#"} {
		// Retained publishes beside the walk: how long each waits for
		// the read lock is how long one hold of it lasts at most.
		stop := make(chan struct{})
		waited := make(chan []time.Duration)
		go func() {
			var w []time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					waited <- w
					return
				default:
				}
				start := time.Now()
				r.set(&Message{Topic: "other/" + strconv.Itoa(i%100), Payload: []byte("p")}, nil, retainLimits{})
				w = append(w, time.Since(start))
				time.Sleep(100 * time.Microsecond)
			}
		}()
		var snap []*Message
		start := time.Now()
		r.match(filter, time.Now(), func(m *Message) { snap = append(snap, m) })
		took := time.Since(start)
		close(stop)
		w := <-waited
		slices.Sort(w)
		t.Logf("snapshot of %q: %d messages in %s; %d retained publishes beside it waited at most %s",
			filter, len(snap), took, len(w), w[len(w)-1])
	}
}
