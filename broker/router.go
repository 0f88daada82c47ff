package broker

import (
	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/topic"
)

// router routes messages to matching sessions. Each connection owns one
// and reuses it, so that matching and encoding allocate nothing in steady
// state.
type router struct {
	b       *Broker
	from    string // publishing client, for No Local
	idx     map[*session]int
	targets []target
	enc     encoder

	// Method values built once: passing them to Match does not allocate.
	eachFn   func(*session, subOpts)
	sharedFn func(string, string, []topic.Member[*session, subOpts])
}

type target struct {
	s *session
	delivery
}

// route delivers m to every matching session. It returns the ticket of
// the store writes that keep it, and whether a full queue refused it.
func (r *router) route(b *Broker, m *Message, from string) (ticket store.Ticket, refused bool) {
	if r.eachFn == nil {
		r.b = b
		r.idx = make(map[*session]int)
		r.eachFn = r.each
		r.sharedFn = r.pickShared
	}
	if m.Retain && !b.opts().DisableRetain {
		ticket = b.retained.set(m, b.store)
	}
	r.from = from
	b.subs.Match(m.Topic, r.eachFn, r.sharedFn)
	authz := b.opts().Authorizer
	_, readAll := authz.(auth.AllowAll)
	for i := range r.targets {
		t := &r.targets[i]
		if !readAll && !authz.Authorize(t.s.client.Load(), auth.Read, m.Topic) {
			*t = target{}
			continue // the subscriber may not read this topic (any more)
		}
		t.qos = min(m.QoS, t.qos)
		t.retain = t.retain && m.Retain
		tk, no := t.s.deliver(m, t.delivery, &r.enc)
		ticket, refused = max(ticket, tk), refused || no
		*t = target{}
	}
	r.targets = r.targets[:0]
	clear(r.idx)
	r.enc.reset()
	return ticket, refused
}

// each merges overlapping subscriptions of one session into one delivery at
// the highest granted QoS [MQTT-3.3.5-1], carrying every matching
// subscription identifier (v5).
func (r *router) each(s *session, o subOpts) {
	if o.noLocal && s.id == r.from {
		return // [MQTT-3.8.3-3] No Local: not to the publisher itself
	}
	i, ok := r.idx[s]
	if !ok {
		i = len(r.targets)
		r.idx[s] = i
		r.targets = append(r.targets, target{s: s})
	}
	t := &r.targets[i]
	t.qos = max(t.qos, o.qos)
	t.retain = t.retain || o.retainAsPublished
	if o.subID != 0 {
		t.subIDs = append(t.subIDs, o.subID)
	}
}

// pickShared delivers to one member of a shared subscription group.
func (r *router) pickShared(group, filter string, members []topic.Member[*session, subOpts]) {
	pick, ok := r.b.shared.pick(group, filter, members, r.from, nil)
	if !ok {
		return
	}
	t := target{s: pick.Key, delivery: delivery{qos: pick.Val.qos, retain: pick.Val.retainAsPublished, group: group, filter: filter}}
	if pick.Val.subID != 0 {
		t.subIDs = []uint32{pick.Val.subID}
	}
	r.targets = append(r.targets, t)
}
