package broker

import (
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/topic"
)

// router routes messages to matching sessions. A connection borrows one
// while it handles input (poll.go) and reuses it, so that decoding,
// matching and encoding allocate nothing in steady state.
//
// Routing has two steps: match finds the sessions a message goes to and
// asks the Authorizer, which may wait on the network, so it runs outside
// every lock and outside the store's atomic section; deliver hands the
// message over and submits the store writes.
type router struct {
	b       *Broker
	from    string // publishing client, for No Local
	remote  bool   // the message comes from another node: neither retained nor forwarded here
	idx     map[*session]int
	targets []target
	groups  []sharedHit
	members []member // the members of every group in groups
	enc     encoder
	// read is what the connection decodes the packets it reads into.
	read packet.Scratch
	// readAt is when the message being routed was read (monoNow), set
	// by the caller when there is an Observer (Broker.observe).
	readAt int64
	// lastRead is when the borrowing connection's last read returned
	// input (monoNow), kept when there is an Observer: the time a PUBLISH
	// was read is that of the read that brought its last bytes, the last
	// before it is decoded.
	lastRead int64

	// Method values built once: passing them to Match does not allocate.
	eachFn   func(*session, subOpts)
	sharedFn func(string, string, []topic.Member[*session, subOpts])
	atomicFn func()
	atomic   atomicDelivery
}

type target struct {
	s *session
	delivery
}

// sharedHit is a shared subscription group matched by a message, with its
// members at r.members[from:to].
type sharedHit struct {
	group, filter string
	from, to      int
}

// Scratch above this many entries is not kept between messages: one
// large fan-out must not pin its memory to the publishing connection.
const maxKeptTargets = 1024

// route delivers m to every matching session. It returns the ticket of
// the store writes that keep it, and whether a full queue refused it.
func (r *router) route(b *Broker, m *Message, from string) (store.Ticket, bool) {
	if b.observer != nil {
		r.readAt = monoNow()
	}
	r.match(b, m, from)
	// One commit for every session's copy, so that the store writes the
	// message once for them all (as for a client's publish).
	r.atomic.m = m
	b.store.Atomic(r.atomicFn)
	t, refused := r.atomic.t, r.atomic.refused
	r.atomic = atomicDelivery{}
	return t, refused
}

// atomicDelivery is deliver's message and results, passed through
// store.Atomic by a method value made once (no allocation per message).
type atomicDelivery struct {
	m       *Message
	stored  func() // called, if set, when m went to the store
	t       store.Ticket
	refused bool
}

func (r *router) deliverAtomic() {
	a := &r.atomic
	if a.t, a.refused = r.deliver(a.m); a.t != 0 && a.stored != nil {
		a.stored()
	}
}

// match collects the sessions m goes to, each authorized to read it.
func (r *router) match(b *Broker, m *Message, from string) {
	r.b = b // a pooled router may have routed for another broker
	if r.eachFn == nil {
		r.idx = make(map[*session]int)
		r.eachFn = r.each
		r.sharedFn = r.sharedGroup
		r.atomicFn = r.deliverAtomic
	}
	r.from = from
	switch {
	case b.cluster == nil:
		b.subs.Match(m.Topic, r.eachFn, r.sharedFn)
	case r.remote || !b.streamed(m):
		b.subs.Match(m.Topic, r.eachFn, nil) // shared groups: Cluster.Forward
	}
	clear(r.idx)
	authz := b.opts().Authorizer
	_, readAll := authz.(auth.AllowAll)
	if !readAll {
		n := 0
		for _, t := range r.targets {
			if authz.Authorize(t.s.client.Load(), auth.Read, m.Topic) {
				r.targets[n] = t
				n++
			} else {
				b.dropped(t.s.client.Load(), m, DropNotAuthorized)
			}
		}
		clear(r.targets[n:])
		r.targets = r.targets[:n]
	}
	for _, g := range r.groups {
		r.pickShared(g, m, authz, readAll)
	}
	clear(r.members)
	r.groups, r.members = r.groups[:0], r.members[:0]
	if cap(r.members) > maxKeptTargets {
		r.groups, r.members = nil, nil
	}
}

// deliver hands m to the sessions match found, stores it as retained if
// it is, and returns the ticket of the store writes and whether full
// queues refused it: every session it went to refused it (RefusePublisher).
// A message some session took is not refused, so that a publisher told
// to retry never makes duplicates.
func (r *router) deliver(m *Message) (ticket store.Ticket, refused bool) {
	var taken bool
	b := r.b
	r.enc.readAt = r.readAt
	if m.Retain && !b.opts().DisableRetain && !r.remote {
		ticket = b.retain(m)
	}
	for i := range r.targets {
		t := &r.targets[i]
		t.qos = min(m.QoS, t.qos)
		t.retain = t.retain && m.Retain
		tk, no := t.s.deliver(m, t.delivery, &r.enc)
		ticket, refused, taken = max(ticket, tk), refused || no, taken || !no
	}
	refused = refused && !taken
	clear(r.targets)
	r.targets = r.targets[:0]
	if cap(r.targets) > maxKeptTargets {
		r.targets, r.idx = nil, make(map[*session]int)
	}
	r.enc.reset()
	b.reportDeliveries(&r.enc)
	r.enc.readAt, r.readAt, r.remote = 0, 0, false
	return ticket, refused
}

// observe counts a delivery of the message enc encodes, now appended to
// the subscriber's output: only for a message being routed (enc.readAt
// set), not one that waited in a queue. reportDeliveries tells the
// Observer.
func (b *Broker) observe(enc *encoder, qos byte) {
	if enc.readAt != 0 {
		enc.delivered[qos]++
	}
}

// reportDeliveries tells the Observer of the deliveries counted in enc,
// with one reading of the clock for them all, and clears the counts.
func (b *Broker) reportDeliveries(enc *encoder) {
	if b.observer == nil || enc.readAt == 0 || enc.delivered == [3]int32{} {
		return
	}
	d := time.Duration(monoNow() - enc.readAt)
	for qos, n := range enc.delivered {
		for range n {
			b.observer.DeliveryLatency(byte(qos), d)
		}
	}
	enc.delivered = [3]int32{}
}

// epoch is the origin of monoNow.
var epoch = time.Now()

// monoNow returns the monotonic clock in nanoseconds since epoch, never
// 0: a timestamp in 8 bytes that a change of the wall clock cannot move.
func monoNow() int64 { return int64(time.Since(epoch)) + 1 }

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

// sharedGroup notes a matching shared subscription group; its member is
// picked once the trie's lock is released.
func (r *router) sharedGroup(group, filter string, members []member) {
	from := len(r.members)
	r.members = append(r.members, members...)
	r.groups = append(r.groups, sharedHit{group, filter, from, len(r.members)})
}

// pickShared chooses the member of a group that receives m: one that may
// read it, so that a member denied the topic never makes the message
// vanish for the whole group.
func (r *router) pickShared(g sharedHit, m *Message, authz auth.Authorizer, readAll bool) {
	mayRead := func(s *session) bool {
		return readAll || authz.Authorize(s.client.Load(), auth.Read, m.Topic)
	}
	pick, ok := r.b.shared.pick(g.group, g.filter, r.members[g.from:g.to], r.from, nil, mayRead)
	if !ok {
		r.b.dropped(nil, m, DropNoSharedMember)
		return
	}
	t := target{s: pick.Key, delivery: delivery{qos: pick.Val.qos, retain: pick.Val.retainAsPublished, group: g.group, filter: g.filter}}
	if pick.Val.subID != 0 {
		t.subIDs = []uint32{pick.Val.subID}
	}
	r.targets = append(r.targets, t)
}
