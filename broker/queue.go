package broker

import (
	"slices"

	"github.com/ternmq/tern/store"
)

// A session's queue is bounded by count and bytes, and all queues together
// by bytes; QueuePolicy says what gives when a bound is reached.

// queuedSize is what a queued message counts against the byte limits.
func queuedSize(m *Message) int64 { return int64(len(m.Topic) + len(m.Payload)) }

// room reports whether a message of n bytes fits in the queue. s.mu must
// be held.
func (s *session) room(n int64) bool {
	o := s.b.opts()
	maxN, maxB, _ := s.queueLimits(o)
	return len(s.queue) < maxN && s.queuedBytes+n <= maxB &&
		s.b.stats.queuedBytes.Load()+n <= o.MaxQueuedBytesTotal
}

// queueLimits returns the bounds of s's queue under o: the broker's, or
// those Options.QueueLimits gives s's client id.
func (s *session) queueLimits(o *Options) (maxQueued int, maxBytes int64, policy QueuePolicy) {
	maxQueued, maxBytes, policy = o.MaxQueued, o.MaxQueuedBytes, o.QueuePolicy
	if len(o.QueueLimits) == 0 {
		return
	}
	if l, ok := o.QueueLimits[s.id]; ok {
		if l.MaxQueued > 0 {
			maxQueued = l.MaxQueued
		}
		if l.MaxQueuedBytes > 0 {
			maxBytes = l.MaxQueuedBytes
		}
		if l.Policy != nil {
			policy = *l.Policy
		}
	}
	return
}

// enqueue queues m, as d says, making room by the policy first, and
// returns what it queued: nil when m does not go in, dropped, or refused
// when the policy is RefusePublisher. Nothing is made for a message that
// does not go in (behind a flooded subscriber, most of them). s.mu must
// be held.
func (s *session) enqueue(m *Message, d delivery) (o *store.Outbound, refused bool) {
	n := queuedSize(m)
	if !s.room(n) {
		_, _, policy := s.queueLimits(s.b.opts())
		switch policy {
		case RefusePublisher:
			s.b.dropped(s.client.Load(), m, DropQueueRefused)
			return nil, true
		case DropOldest:
			for len(s.queue) > 0 && !s.room(n) {
				old := s.queue[0]
				s.unqueue(0, 1)
				s.b.dropped(s.client.Load(), old.Message, DropQueueFull)
				if old.QoS > 0 {
					s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, old.Seq) })
				}
			}
		}
		if !s.room(n) {
			s.b.dropped(s.client.Load(), m, DropQueueFull)
			return nil, false
		}
	}
	s.seq++
	o = d.outbound(s.seq, m)
	s.push(o)
	return o, false
}

// push appends o to the queue and counts it, whether or not there is room
// (enqueue checks). s.mu must be held, or s not yet shared (restore).
func (s *session) push(o *store.Outbound) {
	n := queuedSize(o.Message)
	s.queue = append(s.queue, o)
	s.queuedBytes += n
	s.b.stats.queuedBytes.Add(n)
	s.b.stats.queued.Add(1)
}

// unqueue removes s.queue[i:j]. s.mu must be held.
//
// Taking from the front, as every acknowledgement does behind a full
// window, reslices: the array's head is left to append's next growth,
// which copies only what is still queued. Moving the rest down instead
// would cost the whole queue per message taken (100,000 pointers behind
// a busy fan-in subscriber).
func (s *session) unqueue(i, j int) {
	var n int64
	for _, o := range s.queue[i:j] {
		n += queuedSize(o.Message)
	}
	s.queuedBytes -= n
	s.b.stats.queuedBytes.Add(-n)
	s.b.stats.queued.Add(int64(i - j))
	if i > 0 {
		s.queue = slices.Delete(s.queue, i, j)
		return
	}
	clear(s.queue[:j]) // for the collector
	s.queue = s.queue[j:]
	if len(s.queue) == 0 && cap(s.queue) == 0 {
		s.queue = nil
	}
}

// dropQueue forgets the queue, and the retained messages still owed, of
// a session that ended. s.mu must be held.
func (s *session) dropQueue() {
	s.unqueue(0, len(s.queue))
	s.queue = nil
	s.backlog = nil
}
