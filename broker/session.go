package broker

import (
	"cmp"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// subOpts is what the subscription trie holds for each subscriber.
type subOpts struct {
	qos                        byte
	noLocal, retainAsPublished bool
	subID                      uint32
}

// session is the state the spec says outlives a connection: subscriptions,
// outbound QoS 1/2 messages (in flight or queued) and the packet ids of
// inbound QoS 2 messages not yet released.
type session struct {
	b  *Broker
	id string
	// client is who deliveries are authorized for (auth.Read): the last
	// connection's identity, kept while offline and across restarts.
	client atomic.Pointer[auth.Client]

	online atomic.Bool // conn != nil, readable without mu

	mu sync.Mutex
	// Under mu (the small fields first: a session is kept for every
	// client, connected or not, and its size counts).
	persistent bool   // kept and stored while offline
	gone       bool   // discarded: late deliveries from in-progress routes are dropped
	version    byte   // of the last connection
	expiry     uint32 // v5 Session Expiry Interval in seconds; neverExpires for 3.1.1
	nextID     uint16

	// While offline: when the session ends, and a will waiting for its
	// delay (nil: neither, as for every session online).
	expiryState *expiryState
	conn        *conn // nil while offline
	subs        subSet
	inflight    map[uint16]*store.Outbound // sent, not yet acknowledged; nil until the first
	// resend holds what is in flight from an earlier connection and not
	// yet sent again on this one, in order: it goes out as the window of
	// the current connection allows.
	resend      []*store.Outbound
	queue       []*store.Outbound // waiting for a free in-flight slot or a connection
	queuedBytes int64             // queuedSize of everything in queue
	window      int               // in-flight limit for the current connection
	seq         uint64
	inQoS2      map[uint16]uint64 // packet id -> store.Inbound.Token; nil until the first
	backlog     *retainedBacklog  // retained messages still owed; nil when none
}

func newSession(b *Broker, id string, persistent bool) *session {
	return &session{
		b: b, id: id, persistent: persistent,
		window: b.opts().MaxInflight,
	}
}

// putInflight records o as in flight under its packet id. s.mu must be
// held.
func (s *session) putInflight(o *store.Outbound) {
	if s.inflight == nil {
		s.inflight = make(map[uint16]*store.Outbound)
	}
	s.inflight[o.PacketID] = o
}

// putInQoS2 records the packet id of an inbound QoS 2 message as
// received. s.mu must be held.
func (s *session) putInQoS2(in store.Inbound) {
	if s.inQoS2 == nil {
		s.inQoS2 = make(map[uint16]uint64)
	}
	s.inQoS2[in.PacketID] = in.Token
}

// persist submits a store write for a persistent session and returns its
// ticket (0 for a session that persists nothing). A caller about to
// acknowledge what the write records passes the ticket to conn.after
// first: no acknowledgement runs ahead of the store, and nothing else
// waits for it. s.mu must be held.
func (s *session) persist(write func(store.Store) store.Ticket) store.Ticket {
	if !s.persistent {
		return 0
	}
	return write(s.b.store)
}

// setPersistent changes whether the session outlives its connection (a
// v5 client may resume with a different Session Expiry Interval): the
// stored copy is written in full or deleted. s.mu must be held.
func (s *session) setPersistent(p bool) store.Ticket {
	if s.persistent == p {
		return 0
	}
	if !p {
		t := s.persist(func(st store.Store) store.Ticket { return st.DeleteSession(s.id) })
		s.persistent = false
		return t
	}
	s.persistent = true
	return s.persist(func(st store.Store) store.Ticket {
		t := st.PutSession(s.record())
		for sub := range s.subs.all() {
			t = st.PutSubscription(s.id, sub)
		}
		for _, o := range s.inflight {
			t = st.PutOutbound(s.id, *o)
		}
		for _, o := range s.queue {
			if o.QoS > 0 {
				t = st.PutOutbound(s.id, *o)
			}
		}
		for id, token := range s.inQoS2 {
			t = st.PutInboundQoS2(s.id, store.Inbound{PacketID: id, Token: token})
		}
		return t
	})
}

// delivery says how one message goes to one session.
type delivery struct {
	qos           byte // effective QoS
	retain        bool // RETAIN flag to send
	subIDs        []uint32
	group, filter string // the shared subscription it came through, if any
}

func (d delivery) outbound(seq uint64, m *Message) *store.Outbound {
	return &store.Outbound{Seq: seq, QoS: d.qos, Retain: d.retain, SubIDs: d.subIDs,
		SharedGroup: d.group, SharedFilter: d.filter, Message: m}
}

// deliver hands m to the session. It returns the ticket of the store
// write that keeps it, and whether the queue refused it (RefusePublisher).
// s.mu must not be held.
func (s *session) deliver(m *Message, d delivery, enc *encoder) (t store.Ticket, refused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return 0, false
	}
	c := s.conn
	// QoS 0 is not queued for offline sessions (optional in the spec, and
	// the common choice for "at most once").
	if c == nil && (d.qos == 0 || !s.persistent) {
		return 0, false
	}
	if len(s.queue) == 0 && len(s.resend) == 0 {
		if d.qos == 0 {
			if c.sendPublish(m, enc.bytes(c.version, m, false, d.subIDs), 0, d.retain, false, 0) {
				s.b.observe(enc, 0)
			}
			return 0, false
		}
		if c != nil && len(s.inflight) < s.window && c.pending() < s.b.opts().MaxWriteBuffer {
			s.seq++
			return s.sendNew(c, d.outbound(s.seq, m), enc), false
		}
	}
	// Behind a full window the message waits its turn; QoS 0 too, so that
	// a topic's messages keep their order [MQTT-4.6.0-6].
	o, refused := s.enqueue(m, d)
	if o == nil || d.qos == 0 {
		return 0, refused
	}
	return s.persist(func(st store.Store) store.Ticket { return st.PutOutbound(s.id, *o) }), false
}

// sendNew assigns a packet id to o, records it in flight and sends it,
// encoded by enc. It returns the ticket of the store write. s.mu must be
// held.
func (s *session) sendNew(c *conn, o *store.Outbound, enc *encoder) store.Ticket {
	b := enc.bytes(c.version, o.Message, true, o.SubIDs)
	if !c.fits(len(b)) {
		// Too large for this client: dropped as if delivered [MQTT-3.1.2-25].
		s.b.dropped(c.client, o.Message, DropTooLarge)
		return s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, o.Seq) })
	}
	o.PacketID = s.freeID()
	o.State = store.Sent
	s.putInflight(o)
	t := s.persist(func(st store.Store) store.Ticket { return st.PutOutbound(s.id, *o) })
	if o.QoS == 2 {
		// Sent with its id only once that is stored: a restart must send
		// it again with the same id and DUP, which the client recognises,
		// not as a new message it would deliver a second time.
		c.after(t)
	}
	if c.sendPublish(o.Message, b, o.QoS, o.Retain, false, o.PacketID) {
		s.b.observe(enc, o.QoS)
	}
	return t
}

// freeID returns an unused packet id [MQTT-2.3.1-2]. s.mu must be held and
// the in-flight window must have room (it is at most 65535).
func (s *session) freeID() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if _, used := s.inflight[s.nextID]; !used {
			return s.nextID
		}
	}
}

// fill moves queued messages into flight while the window and the write
// buffer allow; the writer calls it again as the buffer drains.
// s.mu must be held.
func (s *session) fill() {
	c := s.conn
	if c == nil || len(s.queue) == 0 && len(s.resend) == 0 && s.backlog == nil {
		return
	}
	enc := getEncoder()
	defer putEncoder(enc)
	if !s.sendAgain(c, enc) {
		return // new messages wait behind the old ones
	}
	var now time.Time // read for the first message that can expire
	n := 0
	for n < len(s.queue) && (len(s.inflight) < s.window || s.queue[n].QoS == 0) && c.pending() < s.b.opts().MaxWriteBuffer {
		o := s.queue[n]
		n++
		if now.IsZero() && !o.Message.Expiry.IsZero() {
			now = time.Now()
		}
		switch {
		case expired(o.Message, now):
			s.b.dropped(c.client, o.Message, DropExpired)
			if o.QoS > 0 {
				s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, o.Seq) })
			}
		case o.QoS == 0:
			c.sendPublish(o.Message, enc.bytes(c.version, o.Message, false, o.SubIDs), 0, o.Retain, false, 0)
		default:
			s.sendNew(c, o, enc)
		}
	}
	s.unqueue(0, n)
	s.pumpRetained(c, enc)
}

// resume sends what a returning client is owed: unacknowledged PUBLISH
// again with DUP set, PUBREL for released QoS 2 messages, in their
// original order [MQTT-4.4.0-1], then the queue, all within the new
// connection's window [MQTT-3.3.4-9]. s.mu must be held.
func (s *session) resume(c *conn) {
	s.resend = s.resend[:0]
	for _, o := range s.inflight {
		s.resend = append(s.resend, o)
	}
	slices.SortFunc(s.resend, bySeq)
	s.fill()
}

// sendAgain sends what resend holds, encoded by enc, while the window and
// the write buffer allow, and reports whether it is done. A message now
// larger than the client's Maximum Packet Size is discarded as if sent,
// and its slot freed [MQTT-3.1.2-25]. s.mu must be held.
func (s *session) sendAgain(c *conn, enc *encoder) bool {
	for len(s.resend) > 0 && len(s.inflight)-len(s.resend) < s.window && c.pending() < s.b.opts().MaxWriteBuffer {
		o := s.resend[0]
		s.resend[0] = nil
		s.resend = s.resend[1:]
		if o.State == store.Released {
			c.sendPacket(&packet.Pubrel{PacketID: o.PacketID})
			continue
		}
		enc.reset()
		b := enc.bytes(c.version, o.Message, true, o.SubIDs)
		if !c.fits(len(b)) {
			s.b.dropped(c.client, o.Message, DropTooLarge)
			delete(s.inflight, o.PacketID)
			s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, o.Seq) })
			continue
		}
		c.sendPublish(o.Message, b, o.QoS, o.Retain, true, o.PacketID)
	}
	if len(s.resend) == 0 {
		s.resend = nil
		return true
	}
	return false
}

// ack handles PUBACK (QoS 1), PUBCOMP (QoS 2) and a v5 PUBREC failure:
// the flow for id is done.
func (s *session) ack(id uint16, qos byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.inflight[id]
	if o == nil || o.QoS != qos {
		return false
	}
	delete(s.inflight, id)
	if i := slices.Index(s.resend, o); i >= 0 {
		s.resend = slices.Delete(s.resend, i, i+1) // it had reached the client before
	}
	s.persist(func(st store.Store) store.Ticket { return st.DeleteOutbound(s.id, o.Seq) })
	s.fill()
	return true
}

// received handles PUBREC: the client has the QoS 2 message; the next step
// is PUBREL [MQTT-4.3.3-3]. It reports whether id was known, and returns
// the ticket the PUBREL must wait for: were the PUBREL to run ahead of
// the store, a restart would send the message again to a client that
// has completed its flow and would take it for a new one.
func (s *session) received(id uint16) (store.Ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.inflight[id]
	if o == nil || o.QoS != 2 {
		return 0, false
	}
	if o.State == store.Released {
		return 0, true
	}
	o.State = store.Released
	o.Message = nil // from here on only the id matters
	return s.persist(func(st store.Store) store.Ticket { return st.PutOutbound(s.id, *o) }), true
}

// bySeq orders outbound messages as they were routed to the session.
func bySeq(a, b *store.Outbound) int { return cmp.Compare(a.Seq, b.Seq) }

// filters returns the session's subscription filters. s.mu must not be held.
func (s *session) filters() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := make([]string, 0, s.subs.len())
	for sub := range s.subs.all() {
		fs = append(fs, sub.Filter)
	}
	return fs
}

// subSet is a session's subscriptions, by filter. Most sessions have one
// or a few, which a slice holds in what they need: a map holds even one
// in a group of eight slots. Past subSetSmall a map keeps subscribing
// and unsubscribing O(1).
type subSet struct {
	list []store.Subscription
	m    map[string]store.Subscription // instead of list, past subSetSmall
}

const subSetSmall = 16

func (ss *subSet) len() int {
	if ss.m != nil {
		return len(ss.m)
	}
	return len(ss.list)
}

func (ss *subSet) get(filter string) (store.Subscription, bool) {
	if ss.m != nil {
		sub, ok := ss.m[filter]
		return sub, ok
	}
	for _, sub := range ss.list {
		if sub.Filter == filter {
			return sub, true
		}
	}
	return store.Subscription{}, false
}

// put adds sub, replacing the subscription to the same filter.
func (ss *subSet) put(sub store.Subscription) {
	if ss.m != nil {
		ss.m[sub.Filter] = sub
		return
	}
	for i := range ss.list {
		if ss.list[i].Filter == sub.Filter {
			ss.list[i] = sub
			return
		}
	}
	if len(ss.list) < subSetSmall {
		ss.list = append(ss.list, sub)
		return
	}
	ss.m = make(map[string]store.Subscription, 2*subSetSmall)
	for _, x := range ss.list {
		ss.m[x.Filter] = x
	}
	ss.m[sub.Filter] = sub
	ss.list = nil
}

// del removes the subscription to filter and reports whether there was one.
func (ss *subSet) del(filter string) bool {
	if ss.m != nil {
		_, ok := ss.m[filter]
		delete(ss.m, filter)
		return ok
	}
	for i := range ss.list {
		if ss.list[i].Filter == filter {
			ss.list = slices.Delete(ss.list, i, i+1)
			if len(ss.list) == 0 {
				ss.list = nil
			}
			return true
		}
	}
	return false
}

// all yields every subscription, in no particular order.
func (ss *subSet) all() iter.Seq[store.Subscription] {
	return func(yield func(store.Subscription) bool) {
		if ss.m != nil {
			for _, sub := range ss.m {
				if !yield(sub) {
					return
				}
			}
			return
		}
		for _, sub := range ss.list {
			if !yield(sub) {
				return
			}
		}
	}
}
