package cluster

import (
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ternmq/tern/store"
)

// shares holds the NATS queue subscriptions of this node's shared
// subscription members: one per member (per subject of its filter), all
// in the queue group of (group, filter), so that NATS picks one member
// cluster-wide for each message, uniformly.
type shares struct {
	n       *Node
	mu      sync.Mutex
	groups  map[groupKey]*shareGroup
	bySub   map[*nats.Subscription]groupKey
	started bool
	inbox   chan *nats.Msg
}

type groupKey struct{ group, filter string }

type shareGroup struct {
	members [][]*nats.Subscription // one entry per member here
	hand    *nats.Subscription     // hand-over requests, while any member is here
}

// handOverTimeout bounds waiting for another node to take a message.
const handOverTimeout = 2 * time.Second

func (s *shares) init(size int) {
	s.groups = make(map[groupKey]*shareGroup)
	s.bySub = make(map[*nats.Subscription]groupKey)
	s.inbox = make(chan *nats.Msg, size)
}

// queueName is the NATS queue group of a shared subscription: two groups
// of one name with different filters are different groups, and a filter
// and its "/#" twin share a subject.
func queueName(k groupKey) string {
	h := fnv.New64a()
	h.Write([]byte(k.group))
	h.Write([]byte{0})
	h.Write([]byte(k.filter))
	var b strings.Builder
	escapeLevel(&b, k.group)
	b.WriteByte('_')
	b.WriteString(strconv.FormatUint(h.Sum64(), 36))
	return b.String()
}

func handSubject(k groupKey) string { return "tern.hand." + queueName(k) }

func (s *shares) add(group, filter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := groupKey{group, filter}
	g := s.groups[k]
	if g == nil {
		g = &shareGroup{}
		s.groups[k] = g
	}
	g.members = append(g.members, nil)
	if s.started {
		s.subscribe(k, g, len(g.members)-1)
	}
}

func (s *shares) remove(group, filter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := groupKey{group, filter}
	g := s.groups[k]
	if g == nil || len(g.members) == 0 {
		return
	}
	last := len(g.members) - 1
	for _, sub := range g.members[last] {
		sub.Unsubscribe()
		delete(s.bySub, sub)
	}
	g.members = g.members[:last]
	if last == 0 {
		if g.hand != nil {
			g.hand.Unsubscribe()
		}
		delete(s.groups, k)
	}
}

// subscribe makes member i's queue subscriptions, and the group's
// hand-over subscription with the first. s.mu must be held.
func (s *shares) subscribe(k groupKey, g *shareGroup, i int) {
	q := queueName(k)
	for _, subj := range FilterSubjects(k.filter) {
		sub, err := s.n.queue.ChanQueueSubscribe(subj, q, s.inbox)
		if err != nil {
			s.n.log.Error("cluster: shared subscription", "group", k.group, "filter", k.filter, "err", err)
			continue
		}
		g.members[i] = append(g.members[i], sub)
		s.bySub[sub] = k
	}
	if g.hand == nil {
		var err error
		g.hand, err = s.n.queue.QueueSubscribe(handSubject(k), q, func(m *nats.Msg) { s.takeHandOver(k, m) })
		if err != nil {
			s.n.log.Error("cluster: shared subscription hand-over", "group", k.group, "filter", k.filter, "err", err)
		}
	}
}

func (s *shares) start(n *Node) error {
	s.n = n
	s.mu.Lock()
	s.started = true
	for k, g := range s.groups {
		for i := range g.members {
			s.subscribe(k, g, i)
		}
	}
	s.mu.Unlock()
	n.wg.Add(1)
	go s.receive()
	return n.queue.Flush()
}

// receive delivers each message NATS picked a member here for; if that
// member cannot take it any more, another one can, here or elsewhere.
func (s *shares) receive() {
	defer s.n.wg.Done()
	for {
		var m *nats.Msg
		select {
		case m = <-s.inbox:
		case <-s.n.stop:
			return
		}
		s.mu.Lock()
		k, ok := s.bySub[m.Sub]
		s.mu.Unlock()
		if !ok {
			continue // unsubscribed meanwhile: the group had a member elsewhere
		}
		e, err := decodeEnvelope(m.Data)
		if err != nil {
			s.n.stats.malformed.Add(1)
			continue
		}
		s.n.stats.received.Add(1)
		if !s.n.b.RemoteShared(e.msg, e.from, k.group, k.filter) {
			s.n.HandOver(e.msg, k.group, k.filter)
		}
	}
}

// dropped counts the shared-group messages NATS dropped because this
// node did not take them fast enough.
func (s *shares) dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for sub := range s.bySub {
		if d, err := sub.Dropped(); err == nil {
			n += uint64(d)
		}
	}
	return n
}

// HandOver implements broker.Cluster: a member of (group, filter) on
// some node takes m, or nobody does (false).
func (n *Node) HandOver(m *store.Message, group, filter string) bool {
	k := groupKey{group, filter}
	data := appendEnvelope(nil, &envelope{origin: n.instance, msg: m})
	// NATS picks one of the group's nodes, maybe this one again: a few
	// tries find another if there is one.
	for range 3 {
		reply, err := n.queue.Request(handSubject(k), data, handOverTimeout)
		if err != nil {
			return false // no member anywhere, or no answer
		}
		if len(reply.Data) == 1 && reply.Data[0] == 1 {
			n.stats.handedOver.Add(1)
			return true
		}
	}
	return false
}

func (s *shares) takeHandOver(k groupKey, m *nats.Msg) {
	ok := byte(0)
	if e, err := decodeEnvelope(m.Data); err == nil && s.n.b.RemoteShared(e.msg, e.from, k.group, k.filter) {
		ok = 1
	}
	m.Respond([]byte{ok})
}
