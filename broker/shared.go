package broker

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"

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

// pick chooses a member other than exclude, connected if any is.
func (p *sharedPicker) pick(group, filter string, members []member, from string, exclude *session) (member, bool) {
	n := len(members)
	if n == 0 || (n == 1 && members[0].Key == exclude) {
		return member{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.groups == nil || len(p.groups) > maxGroupStates {
		// Group names are the clients' to choose: forgetting turn and
		// stickiness now and then bounds the map at no real cost.
		p.groups = make(map[groupKey]*groupState)
	}
	g := p.groups[groupKey{group, filter}]
	if g == nil {
		g = &groupState{}
		p.groups[groupKey{group, filter}] = g
	}
	var start int
	switch p.strategy {
	case Random:
		start = rand.IntN(n)
	case HashClientID:
		h := fnv.New32a()
		h.Write([]byte(from))
		start = int(h.Sum32() % uint32(n))
	case Sticky:
		if i := slices.IndexFunc(members, func(m member) bool { return m.Key == g.sticky }); i >= 0 &&
			g.sticky != exclude && g.sticky.online.Load() {
			return members[i], true
		}
		fallthrough
	default:
		start = int(g.next % uint32(n))
		g.next++
	}
	pick, found := -1, false
	for i := range n {
		k := (start + i) % n
		if members[k].Key == exclude {
			continue
		}
		if pick < 0 {
			pick = k
		}
		if members[k].Key.online.Load() {
			pick, found = k, true
			break
		}
	}
	if pick < 0 {
		return member{}, false
	}
	if found {
		g.sticky = members[pick].Key
	}
	return members[pick], true
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
	slices.SortFunc(moving, func(a, b *store.Outbound) int { return int(a.Seq - b.Seq) })
	var enc encoder
	for _, o := range moving {
		var to member
		var found bool
		b.subs.Match(o.Message.Topic, nil, func(group, filter string, members []member) {
			if group == o.SharedGroup && filter == o.SharedFilter {
				to, found = b.shared.pick(group, filter, members, "", s)
			}
		})
		if !found || (!to.Key.online.Load() && !ending) {
			continue // nobody better placed: it stays where it is
		}
		if !s.release(o) {
			continue // acknowledged meanwhile
		}
		d := delivery{qos: min(o.Message.QoS, to.Val.qos), group: o.SharedGroup, filter: o.SharedFilter}
		if to.Val.subID != 0 {
			d.subIDs = []uint32{to.Val.subID}
		}
		to.Key.deliver(o.Message, d, &enc)
		enc.reset()
	}
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
