package bridge

import (
	"hash/maphash"
	"sync"
	"time"
)

// echoes remembers messages forwarded to a remote that cannot be told No
// Local (before MQTT 5), so that each is dropped once when the remote
// sends it back. Bounded in number and age.
type echoes struct {
	mu    sync.Mutex
	seed  maphash.Seed
	count map[uint64]int // remembered and not yet back
	taken map[uint64]int // came back, fifo entry not yet expired
	fifo  []echoEntry    // oldest first
}

type echoEntry struct {
	key uint64
	at  time.Time
}

const (
	maxEchoes = 10000
	echoAge   = time.Minute
)

func newEchoes() *echoes {
	return &echoes{seed: maphash.MakeSeed(), count: make(map[uint64]int), taken: make(map[uint64]int)}
}

func (e *echoes) key(topic string, payload []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteString(topic)
	h.WriteByte(0)
	h.Write(payload)
	return h.Sum64()
}

// expire forgets entries too old or beyond the bound. mu must be held.
func (e *echoes) expire(now time.Time) {
	n := 0
	for n < len(e.fifo) && (len(e.fifo)-n > maxEchoes || now.Sub(e.fifo[n].at) > echoAge) {
		k := e.fifo[n].key
		if e.taken[k] > 0 {
			decr(e.taken, k)
		} else {
			decr(e.count, k)
		}
		n++
	}
	e.fifo = e.fifo[n:]
}

// add records a message forwarded out.
func (e *echoes) add(topic string, payload []byte) {
	k := e.key(topic, payload)
	now := time.Now()
	e.mu.Lock()
	e.fifo = append(e.fifo, echoEntry{k, now})
	e.count[k]++
	e.expire(now)
	e.mu.Unlock()
}

// take reports whether a message coming in is the echo of one forwarded
// out, and forgets one such.
func (e *echoes) take(topic string, payload []byte) bool {
	k := e.key(topic, payload)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expire(time.Now())
	if e.count[k] == 0 {
		return false
	}
	decr(e.count, k)
	e.taken[k]++ // its fifo entry stays until it ages out
	return true
}

func decr(m map[uint64]int, k uint64) {
	if m[k] <= 1 {
		delete(m, k)
	} else {
		m[k]--
	}
}
