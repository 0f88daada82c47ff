package bench

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// benchSub is what one subscriber connection's reader records. Counters
// are atomic only so that the progress line can read them; the histogram
// and the timestamps are the reader's alone until it has stopped.
type benchSub struct {
	runID uint32
	recv  *benchRecv // nil: no expectation (sub scenario), count only
	hist  latencyHist

	received atomic.Uint64 // arrivals of bench messages, duplicates included
	dups     atomic.Uint64
	foreign  atomic.Uint64 // not a bench message of this run, or from a publisher it does not expect
	first    int64         // unix nanos of the first and last arrival
	last     int64
}

// benchClockSkew bounds what counts as a send timestamp when messages may
// come from another process (sub scenario): an hour either way.
const benchClockSkew = int64(time.Hour)

// record takes one arrived payload.
func (s *benchSub) record(payload []byte, now int64) {
	if len(payload) < HeaderLen {
		s.foreign.Add(1)
		return
	}
	sent := int64(binary.BigEndian.Uint64(payload[benchStampTime:]))
	seq := binary.BigEndian.Uint32(payload[benchStampSeq:])
	pub := int(binary.BigEndian.Uint32(payload[benchStampPub:]))
	run := binary.BigEndian.Uint32(payload[benchStampRun:])
	if s.recv != nil {
		if run != s.runID {
			s.foreign.Add(1)
			return
		}
		t := s.recv.tracker(pub)
		if t == nil {
			s.foreign.Add(1)
			return
		}
		if !t.add(seq) {
			s.received.Add(1)
			s.dups.Add(1)
			return
		}
	} else if d := now - sent; d < -benchClockSkew || d > benchClockSkew {
		// Another tool's message: counted, but it has no latency to give.
		s.received.Add(1)
		s.mark(now)
		return
	}
	s.received.Add(1)
	s.mark(now)
	s.hist.record(now - sent)
}

func (s *benchSub) mark(now int64) {
	if s.first == 0 {
		s.first = now
	}
	s.last = now
}

// benchRecv is one logical receiver (a subscriber, or a shared group):
// one tracker per publisher it expects every message of.
type benchRecv struct {
	pubFirst   int
	trackers   []seqTracker
	subscribed atomic.Bool // a member's SUBACK arrived: it expects messages
}

func newBenchRecv(p benchRecvPlan) *benchRecv {
	return &benchRecv{pubFirst: p.pubFirst, trackers: make([]seqTracker, p.pubN)}
}

func (r *benchRecv) tracker(pub int) *seqTracker {
	i := pub - r.pubFirst
	if i < 0 || i >= len(r.trackers) {
		return nil
	}
	return &r.trackers[i]
}

// seqTracker counts the distinct sequence numbers seen from one publisher,
// telling duplicates apart with a sliding bitmap of the last
// seqWindow numbers: MQTT delivers a publisher's messages in order
// ([MQTT-4.6.0-5] for ordered topics), so a repeat is recent. A number below the window is
// counted as a duplicate too: it is either one or a message so late that
// it was already counted as lost, and either way not a fresh arrival.
// The mutex matters only for shared groups, where members share trackers;
// uncontended it costs a few nanoseconds.
type seqTracker struct {
	mu     sync.Mutex
	base   uint32   // numbers below base have left the window
	bits   []uint64 // seqWindow bits, a ring indexed by seq % seqWindow
	unique uint64
}

const seqWindow = 1 << 15

// add records seq and reports whether it is new.
func (t *seqTracker) add(seq uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bits == nil {
		t.bits = make([]uint64, seqWindow/64)
	}
	if seq < t.base {
		return false
	}
	if seq-t.base >= seqWindow {
		// Slide so that seq is the newest number in the window, clearing
		// the words that leave it (all of them after a long jump).
		newBase := (seq - seqWindow + 64) &^ 63
		if newBase-t.base >= seqWindow {
			clear(t.bits)
		} else {
			for b := t.base; b < newBase; b += 64 {
				t.bits[b/64%(seqWindow/64)] = 0
			}
		}
		t.base = newBase
	}
	w, bit := &t.bits[seq/64%(seqWindow/64)], uint64(1)<<(seq%64)
	if *w&bit != 0 {
		return false
	}
	*w |= bit
	t.unique++
	return true
}

func (t *seqTracker) count() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unique
}
