package broker

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/topic"
)

// SharedStrategy chooses which member of a shared subscription group
// ($share/{group}/{filter}) receives a message. Whatever the strategy,
// connected members are preferred to offline ones.
type SharedStrategy uint8

const (
	RoundRobin   SharedStrategy = iota // members in turn
	Random                             // a member at random
	Sticky                             // the same member while it stays connected
	HashClientID                       // by the publisher's client id: one publisher, one member
)

type member = topic.Member[*session, subOpts]

type groupKey struct{ group, filter string }

const maxGroupStates = 10000

type groupState struct {
	next   uint32
	sticky *session
}

// sharedPicker keeps the per-group state the strategies need.
type sharedPicker struct {
	strategy SharedStrategy
	mu       sync.Mutex
	groups   map[groupKey]*groupState
}

// pick chooses a member other than exclude that may receive the message
// (mayRead), connected if any is. It asks mayRead outside the picker's
// lock: an Authorizer may wait on the network.
func (p *sharedPicker) pick(group, filter string, members []member, from string, exclude *session, mayRead func(*session) bool) (member, bool) {
	n := len(members)
	if n == 0 || (n == 1 && members[0].Key == exclude) {
		return member{}, false
	}
	start, sticky := p.start(groupKey{group, filter}, n, from)
	if sticky != nil && sticky != exclude && sticky.online.Load() {
		if i := slices.IndexFunc(members, func(m member) bool { return m.Key == sticky }); i >= 0 && mayRead(sticky) {
			return members[i], true
		}
	}
	pick, found := -1, false
	for i := range n {
		k := (start + i) % n
		s := members[k].Key
		if s == exclude || (pick >= 0 && !s.online.Load()) || !mayRead(s) {
			continue
		}
		if pick < 0 {
			pick = k
		}
		if s.online.Load() {
			pick, found = k, true
			break
		}
	}
	if pick < 0 {
		return member{}, false
	}
	if found && p.strategy == Sticky {
		p.mu.Lock()
		if g := p.groups[groupKey{group, filter}]; g != nil {
			g.sticky = members[pick].Key
		}
		p.mu.Unlock()
	}
	return members[pick], true
}

// start returns where the strategy begins looking among n members, and
// the member a Sticky group sticks to.
func (p *sharedPicker) start(k groupKey, n int, from string) (int, *session) {
	switch p.strategy {
	case Random:
		return rand.IntN(n), nil
	case HashClientID:
		h := fnv.New32a()
		h.Write([]byte(from))
		return int(h.Sum32() % uint32(n)), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.groups == nil || len(p.groups) > maxGroupStates {
		// Group names are the clients' to choose: forgetting turn and
		// stickiness now and then bounds the map at no real cost.
		p.groups = make(map[groupKey]*groupState)
	}
	g := p.groups[k]
	if g == nil {
		g = &groupState{}
		p.groups[k] = g
	}
	start := int(g.next % uint32(n))
	g.next++
	return start, g.sticky
}

// redistribute hands messages that reached s through shared subscriptions
// to other connected members when s goes offline, so they are not
// stranded: queued messages, and QoS 1 in flight (a duplicate is allowed).
// QoS 2 in flight never moves [MQTT-4.8.2-5]: its client may hold it, and
// exactly-once forbids a second copy. Every session that ends comes here
// with ending set.
func (b *Broker) redistribute(s *session, ending bool) {
	s.mu.Lock()
	var moving []*store.Outbound
	for _, o := range s.queue {
		if o.SharedGroup != "" {
			moving = append(moving, o)
		}
	}
	for _, o := range s.inflight {
		if o.SharedGroup != "" && o.QoS == 1 {
			moving = append(moving, o)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(moving, bySeq)
	var enc encoder
	var members []member
	authz := b.opts().Authorizer
	for _, o := range moving {
		members = members[:0]
		b.subs.Match(o.Message.Topic, nil, func(group, filter string, ms []member) {
			if group == o.SharedGroup && filter == o.SharedFilter {
				members = append(members, ms...)
			}
		})
		mayRead := func(to *session) bool { return authz.Authorize(to.client.Load(), auth.Read, o.Message.Topic) }
		to, found := b.shared.pick(o.SharedGroup, o.SharedFilter, members, "", s, mayRead)
		if !found || (!to.Key.online.Load() && !ending) {
			// Nobody better placed here: in a cluster, a member on
			// another node may be; otherwise it stays where it is.
			if (!found || ending) && b.handOver(o.Message, o.SharedGroup, o.SharedFilter) {
				s.release(o)
			}
			continue
		}
		d := delivery{qos: min(o.Message.QoS, to.Val.qos), group: o.SharedGroup, filter: o.SharedFilter}
		if to.Val.subID != 0 {
			d.subIDs = []uint32{to.Val.subID}
		}
		// Taken from one session and given to the other in one commit: a
		// crash in between neither loses nor doubles it.
		b.store.Atomic(func() {
			if s.release(o) { // still there: not acknowledged meanwhile
				to.Key.deliver(o.Message, d, &enc)
			}
		})
		enc.reset()
	}
	clear(members)
	if ending {
		s.mu.Lock()
		s.dropQueue() // what stayed goes with the session
		s.mu.Unlock()
	}
}

// release removes o from an offline session's queue, or from its
// in-flight window if QoS 1; it reports whether o was still there and the
// client had not come back meanwhile. s.mu must not be held.
func (s *session) release(o *store.Outbound) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return false // resumed: the returning client gets it
	}
	if i := slices.Index(s.queue, o); i >= 0 {
		s.unqueue(i, i+1)
	} else if o.QoS == 1 && s.inflight[o.PacketID] == o {
		delete(s.inflight, o.PacketID)
	} else {
		return false
	}
	s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, o.Seq) })
	return true
}
