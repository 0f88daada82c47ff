package broker

import (
	"time"

	"github.com/ternmq/tern/store"
)

// The sweeper removes expired messages from session queues and from the
// retained set, so that memory and the store hold live data only, also
// for sessions whose clients never come back to trigger the check on
// delivery.

func (b *Broker) sweeper() {
	defer b.sweeping.Done()
	t := time.NewTicker(b.opts().ExpirySweep)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.sweep(now)
		}
	}
}

func (b *Broker) sweep(now time.Time) {
	b.mu.Lock()
	sessions := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		sessions = append(sessions, s)
	}
	b.mu.Unlock()
	for _, s := range sessions {
		s.mu.Lock()
		s.dropExpired(now)
		s.mu.Unlock()
	}
	b.stats.expired.Add(int64(b.retained.sweep(now, b.store)))
	b.forgetIdleAddresses(now)
}

// dropExpired removes expired messages from the queue; messages in flight
// are past the point of no return and stay. s.mu must be held.
func (s *session) dropExpired(now time.Time) {
	for i := 0; i < len(s.queue); {
		o := s.queue[i]
		if !expired(o.Message, now) {
			i++
			continue
		}
		s.unqueue(i, i+1)
		s.b.dropped(s.client.Load(), o.Message, DropExpired)
		if o.QoS > 0 {
			s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, o.Seq) })
		}
	}
}
