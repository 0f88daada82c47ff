package broker

import (
	"slices"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/store"
)

// A session passes to another identity only when an authorizer grants
// that identity the client id explicitly. What the session held was
// authorized for its former owner, so it is taken out and delivered
// again, each message checked against the new owner.

// takeOutbound removes the queued messages and those sent but not yet
// received (a QoS 2 message past PUBREC stays: only its id is left) and
// returns them in order. s.mu must be held.
func (s *session) takeOutbound() []*store.Outbound {
	moved := slices.Clone(s.queue)
	s.dropQueue()
	for id, o := range s.inflight {
		if o.State == store.Sent {
			moved = append(moved, o)
			delete(s.inflight, id)
		}
	}
	slices.SortFunc(moved, bySeq)
	for _, o := range moved {
		if o.QoS > 0 {
			s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, o.Seq) })
		}
	}
	return moved
}

// redeliver delivers moved messages again to s, each only if the
// session's owner may read it. s.mu must not be held: authorizing may
// wait on the network.
func (s *session) redeliver(moved []*store.Outbound) {
	var enc encoder
	for _, o := range moved {
		if !s.b.opts().Authorizer.Authorize(s.client.Load(), auth.Read, o.Message.Topic) {
			s.b.dropped(s.client.Load(), o.Message, DropNotAuthorized)
			continue
		}
		d := delivery{qos: o.QoS, retain: o.Retain, subIDs: o.SubIDs, group: o.SharedGroup, filter: o.SharedFilter}
		s.deliver(o.Message, d, &enc)
		enc.reset()
	}
}
