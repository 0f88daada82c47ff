package cluster

import (
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/topic"
)

// DefaultReceiveBuffer is Config.ReceiveBuffer's default.
const DefaultReceiveBuffer = 1 << 18

// routes holds the NATS subscriptions for this node's plain
// subscriptions and forwards what this node publishes.
type routes struct {
	n       *Node
	mu      sync.Mutex
	filters map[string]*interest
	started bool
	inbox   chan *nats.Msg

	fwd sync.Mutex // orders seq with the wire
	seq uint64
	buf []byte
}

// interest is how many sessions here subscribe to a filter, and its NATS
// subscriptions while any do.
type interest struct {
	count int
	subs  []*nats.Subscription
}

func (r *routes) init(size int) {
	r.filters = make(map[string]*interest)
	r.inbox = make(chan *nats.Msg, size)
}

// Subscribed implements broker.Cluster.
func (n *Node) Subscribed(filter string) {
	if group, inner, ok := topic.ParseShared(filter); ok {
		n.shares.add(group, inner)
		return
	}
	r := &n.routes
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.filters[filter]
	if i == nil {
		i = &interest{}
		r.filters[filter] = i
	}
	if i.count++; i.count == 1 && r.started {
		r.subscribe(filter, i)
	}
}

// Unsubscribed implements broker.Cluster.
func (n *Node) Unsubscribed(filter string) {
	if group, inner, ok := topic.ParseShared(filter); ok {
		n.shares.remove(group, inner)
		return
	}
	r := &n.routes
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.filters[filter]
	if i == nil {
		return
	}
	if i.count--; i.count == 0 {
		for _, s := range i.subs {
			s.Unsubscribe()
		}
		delete(r.filters, filter)
	}
}

// subscribe makes the NATS subscriptions of filter. r.mu must be held.
func (r *routes) subscribe(filter string, i *interest) {
	for _, subj := range FilterSubjects(filter) {
		s, err := r.n.pub.ChanSubscribe(subj, r.inbox)
		if err != nil {
			r.n.log.Error("cluster: subscribe", "filter", filter, "subject", subj, "err", err)
			continue
		}
		i.subs = append(i.subs, s)
	}
}

func (r *routes) start(n *Node) error {
	r.n = n
	r.mu.Lock()
	r.started = true
	for f, i := range r.filters {
		r.subscribe(f, i)
	}
	r.mu.Unlock()
	n.wg.Add(1)
	go r.receive()
	return n.pub.Flush()
}

// receive hands what other nodes forward to delivery workers by subject:
// one topic's messages stay in order in one worker, and the copies NATS
// delivers of a message matching several of this node's subjects (in a
// row, same subject) meet there and are delivered once. Several workers
// route in parallel, as each local publisher's connection does.
func (r *routes) receive() {
	defer r.n.wg.Done()
	workers := make([]chan *nats.Msg, runtime.GOMAXPROCS(0))
	for i := range workers {
		workers[i] = make(chan *nats.Msg, 1024)
		r.n.wg.Add(1)
		go r.deliver(workers[i])
	}
	for {
		var m *nats.Msg
		select {
		case m = <-r.inbox:
		case <-r.n.stop:
			return
		}
		select {
		case workers[fnv1a(m.Subject)%uint32(len(workers))] <- m:
		case <-r.n.stop:
			return
		}
	}
}

// fnv1a hashes s with FNV-1a, without the allocations of hash/fnv.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// deliver routes one worker's share of forwarded messages here.
func (r *routes) deliver(in <-chan *nats.Msg) {
	defer r.n.wg.Done()
	last := make(map[uint64]uint64) // origin instance -> last seq delivered
	for {
		var m *nats.Msg
		select {
		case m = <-in:
		case <-r.n.stop:
			return
		}
		e, err := decodeEnvelope(m.Data)
		if err != nil {
			r.n.stats.malformed.Add(1)
			continue
		}
		if e.seq <= last[e.origin] {
			continue
		}
		last[e.origin] = e.seq
		if e.msg.QoS > 0 && r.n.st != nil {
			continue // it comes through the stream
		}
		r.n.stats.received.Add(1)
		r.n.b.RemotePublish(e.msg, e.from, nil)
	}
}

// dropped counts the forwarded messages NATS dropped because this node
// did not take them fast enough.
func (r *routes) dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for _, i := range r.filters {
		for _, s := range i.subs {
			if d, err := s.Dropped(); err == nil {
				n += uint64(d)
			}
		}
	}
	return n
}

// envelopeRoom is kept below NATS's maximum payload for what an envelope
// adds to a message, and the headers of a stored one.
const envelopeRoom = 4096

// MaxMessageSize implements broker.Cluster.
func (n *Node) MaxMessageSize() uint32 {
	return uint32(min(max(n.pub.MaxPayload()-envelopeRoom, 0), math.MaxUint32))
}

// Forward implements broker.Cluster: one NATS message on the topic's
// subject reaches the nodes with interest and the shared groups; with a
// replicated store, a QoS 1 or 2 message is also appended to the stream,
// through which it reaches the plain subscriptions of every node (with a
// token, after the record of its receipt: appendStream).
func (n *Node) Forward(m *store.Message, from string, token uint64) store.Ticket {
	r := &n.routes
	subj := Subject(m.Topic)
	var t store.Ticket
	r.fwd.Lock()
	r.seq++
	r.buf = appendEnvelope(r.buf[:0], &envelope{origin: n.instance, seq: r.seq, from: from, msg: m})
	var err error
	if int64(len(r.buf)) > n.pub.MaxPayload() {
		err = nats.ErrMaxPayload
	} else {
		if m.QoS > 0 && n.st != nil {
			t = n.appendStream(subj, r.seq, token, slices.Clone(r.buf))
		}
		err = n.pub.Publish(subj, r.buf)
	}
	if cap(r.buf) > 64<<10 {
		r.buf = nil
	}
	r.fwd.Unlock()
	if err != nil {
		n.stats.forwardFailed.Add(1)
		n.logOnce("forward", "cluster: a message was not forwarded to other nodes", "topic", m.Topic, "err", err)
	} else {
		n.stats.forwarded.Add(1)
	}
	if m.Retain {
		n.ret.publish(m)
	}
	return t
}

// Reforward implements broker.Cluster: the message goes to the stream
// again, alone, under the message id its token gives; the stream drops
// it if it has it (within its duplicate window, two minutes).
func (n *Node) Reforward(m *store.Message, from string, token uint64) store.Ticket {
	if n.st == nil {
		return 0
	}
	r := &n.routes
	r.fwd.Lock()
	r.seq++
	data := appendEnvelope(nil, &envelope{origin: n.instance, seq: r.seq, from: from, msg: m})
	r.fwd.Unlock()
	if int64(len(data)) > n.pub.MaxPayload() {
		return 0 // as when it was first forwarded
	}
	n.stats.reforwarded.Add(1)
	if m.Retain {
		n.ret.publish(m)
	}
	return n.st.AppendAgain(fwdPrefix+Subject(m.Topic), tokenMsgID(token), data)
}
