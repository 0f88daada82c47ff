package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/store"
)

// Cluster joins the broker to the other nodes of a cluster (package
// cluster implements it over NATS). The broker tells it what happens on
// this node; what comes from other nodes it hands back through the
// Remote* methods, ReleaseSession and ImportSession.
//
// In a cluster, shared subscription groups are served through the
// cluster, this node's members included, so that each message goes to one
// member cluster-wide: the broker never picks a member for a message
// published here, and RemoteShared delivers what the cluster picked.
type Cluster interface {
	// Forward sends m, published on this node by client from ("" for the
	// server), to the nodes with matching subscriptions and to the shared
	// groups. It is called in the order each connection publishes. The
	// ticket (of the broker's store) is acknowledged once m is where
	// the cluster keeps it.
	//
	// A token other than 0 marks a QoS 2 message whose receipt this
	// node's store records under that token: m reaches no other node
	// before the record is durable, and a Reforward under the same token
	// is recognised as a copy.
	Forward(m *Message, from string, token uint64) store.Ticket
	// Reforward forwards again a QoS 2 message forwarded under token
	// before, which its client retransmits: the first forwarding may not
	// have been kept (its node may have died before it was). The
	// subscribers get it once, unless the first was kept longer ago than
	// the cluster recognises copies; shared groups, served at most once
	// between nodes, do not get it again.
	Reforward(m *Message, from string, token uint64) store.Ticket
	// Streams reports whether QoS 1 and 2 messages reach the subscribers
	// on every node, this one's included, through the cluster (a
	// replicated stream): the broker then leaves their delivery to it,
	// and acknowledges them once Forward's ticket is.
	Streams() bool
	// Subscribed and Unsubscribed report one session's subscription to a
	// filter (as the client sent it, "$share/..." included) being added
	// and removed.
	Subscribed(filter string)
	Unsubscribed(filter string)
	// HandOver passes a message of a shared group that no member on this
	// node can take any more to a member on another node, if there is one.
	HandOver(m *Message, group, filter string) bool
	// Claim makes this node the owner of c's client id before c attaches
	// to its session: a connection with the id on another node is closed,
	// and its session, unless clean, is brought here (ImportSession).
	// release is called once the connection is attached or refused.
	// errNotOwner-wrapping errors refuse a client of another identity.
	Claim(ctx context.Context, c *auth.Client, granted, clean bool) (release func(), err error)
	// Ended reports that the session of a client id ended here, so that
	// the id is nobody's any more (HasSession tells whether a new one
	// began meanwhile). It must not block.
	Ended(clientID string)
	// Unretain clears the message retained for topic on every node, as
	// an administrator asked here (a client clears one with a PUBLISH).
	Unretain(topic string)
	// Health returns why the cluster cannot keep QoS 1 and 2 messages
	// now (no quorum), or nil: the broker then refuses them.
	Health() error
	// MaxMessageSize bounds a PUBLISH packet: what the cluster carries
	// between nodes. MaxPacketSize is at most this.
	MaxMessageSize() uint32
}

// ErrNotOwner is returned by ReleaseSession for a client of another
// identity than the session's, and may be returned by Cluster.Claim.
var ErrNotOwner = errNotOwner

// subscribe adds s's subscription to filter to the trie; b.cluster hears
// of a new one.
func (b *Broker) subscribe(filter string, s *session, o subOpts) {
	if !b.subs.Add(filter, s, o) && b.cluster != nil {
		b.cluster.Subscribed(filter)
	}
}

// unsubscribe removes s's subscription to filter from the trie.
func (b *Broker) unsubscribe(filter string, s *session) {
	if b.subs.Remove(filter, s) && b.cluster != nil {
		b.cluster.Unsubscribed(filter)
	}
}

// forward sends m, just routed here, to the other nodes, and returns the
// ticket of its keeping there.
func (r *router) forward(m *Message, token uint64) store.Ticket {
	if m != nil && r.b != nil && r.b.cluster != nil && !isSys(m.Topic) {
		return r.b.cluster.Forward(m, r.from, token)
	}
	return 0
}

// streamed reports whether the cluster delivers m, to this node's
// subscribers too (Cluster.Streams).
func (b *Broker) streamed(m *Message) bool { return m.QoS > 0 && b.streams && !isSys(m.Topic) }

// isSys tells a topic of the $SYS tree, which every node publishes about
// itself: it stays on the node.
func isSys(name string) bool { return strings.HasPrefix(name, "$SYS/") }

// RemotePublish delivers a message published on another node to this
// node's subscribers (not its shared groups: see RemoteShared); from is
// the publishing client, for No Local. The message is not retained here
// (RemoteRetained does that) nor forwarded again.
//
// stored, if not nil, is called when m was queued in the store for a
// persistent session, within the same atomic commit: the caller's record
// of having delivered m commits with the deliveries.
func (b *Broker) RemotePublish(m *Message, from string, stored func()) {
	b.remoteRoute(m, from, nil, stored)
}

// RedeliverTo delivers m, published on another node, to session id alone
// if it subscribes to it, and returns the ticket of the store writes: a
// session that came from another node gets what that node had not yet
// delivered to it.
func (b *Broker) RedeliverTo(id string, m *Message, from string) store.Ticket {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s == nil {
		return 0
	}
	return b.remoteRoute(m, from, s, nil)
}

// remoteRoute routes m to every matching session here, or to only if set.
func (b *Broker) remoteRoute(m *Message, from string, only *session, stored func()) store.Ticket {
	r, _ := b.remoteRouters.Get().(*router)
	if r == nil {
		r = new(router)
	}
	if b.observer != nil {
		r.readAt = monoNow()
	}
	r.remote = true
	r.match(b, m, from) // outside Atomic: authorization may wait
	if only != nil {
		r.targets = slices.DeleteFunc(r.targets, func(t target) bool { return t.s != only })
	}
	var t store.Ticket
	if len(r.targets) == 0 {
		r.deliver(m)
	} else {
		r.atomic = atomicDelivery{m: m, stored: stored}
		b.store.Atomic(r.atomicFn)
		t = r.atomic.t
		r.atomic = atomicDelivery{}
	}
	b.remoteRouters.Put(r)
	return t
}

// RemoteShared delivers m to one member on this node of the shared group
// (group, filter), which the cluster picked for it; false: no member here
// can take it.
func (b *Broker) RemoteShared(m *Message, from, group, filter string) bool {
	var members []member
	b.subs.Match(m.Topic, nil, func(g, f string, ms []member) {
		if g == group && f == filter {
			members = append(members, ms...)
		}
	})
	authz := b.opts().Authorizer
	mayRead := func(s *session) bool { return authz.Authorize(s.client.Load(), auth.Read, m.Topic) }
	to, ok := b.shared.pick(group, filter, members, from, nil, mayRead)
	if !ok {
		return false
	}
	d := delivery{qos: min(m.QoS, to.Val.qos), retain: to.Val.retainAsPublished && m.Retain, group: group, filter: filter}
	if to.Val.subID != 0 {
		d.subIDs = []uint32{to.Val.subID}
	}
	var enc encoder
	_, refused := to.Key.deliver(m, d, &enc)
	enc.reset()
	return !refused
}

// RemoteRetained applies a retained message set or cleared (empty
// payload) on any node, in the cluster's order, to this node's copy.
func (b *Broker) RemoteRetained(m *Message) {
	if len(m.Payload) == 0 {
		b.retained.delete(m.Topic, b.store)
		return
	}
	b.retain(m)
}

// RetainedTopics returns the topics retained on this node, $SYS aside.
func (b *Broker) RetainedTopics() []string {
	var topics []string
	b.retained.mu.RLock()
	b.retained.root.each(true, func(n *rnode) {
		if n.msg != nil && !isSys(n.msg.Topic) {
			topics = append(topics, n.msg.Topic)
		}
	})
	b.retained.mu.RUnlock()
	return topics
}

// ended tells the cluster that the session of id ended here.
func (b *Broker) ended(id string) {
	if b.cluster != nil {
		b.cluster.Ended(id)
	}
}

// HasSession reports whether there is a session of client id here.
func (b *Broker) HasSession(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[id] != nil
}

// SessionIDs returns the client ids of this node's sessions.
func (b *Broker) SessionIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make([]string, 0, len(b.sessions))
	for id := range b.sessions {
		ids = append(ids, id)
	}
	return ids
}

// ReleaseSession gives up client id because a client of identity to
// connects with it on another node: a connection here is closed as taken
// over [MQTT-3.1.4-3] and the session leaves this node. Unless clean (the
// new connection starts afresh, and the session's will goes out as it
// ends here), a persistent session is returned for the other node to
// import. It returns ErrNotOwner, touching nothing, if the session belongs
// to another identity and granted is false.
func (b *Broker) ReleaseSession(id string, to auth.Identity, granted, clean bool) (*store.SessionState, error) {
	for {
		b.mu.Lock()
		s := b.sessions[id]
		if s == nil {
			b.mu.Unlock()
			return nil, nil
		}
		if owner := s.client.Load().Identity(); owner != to && !granted {
			b.mu.Unlock()
			return nil, fmt.Errorf("%w (%s)", errNotOwner, owner)
		}
		if b.endLive(s) {
			continue
		}
		var st *store.SessionState
		if s.persistent && !clean {
			s.mu.Lock()
			st = s.export()
			s.mu.Unlock()
		}
		if st == nil {
			w, t := b.discard(s)
			b.mu.Unlock()
			b.redistribute(s, true)
			b.publishWill(w) // the session ends
			return nil, b.wait(t)
		}
		// It lives on elsewhere, queue and will included: a new
		// connection came before the will's delay was up.
		t := b.handOff(s)
		b.mu.Unlock()
		return st, b.wait(t)
	}
}

// export returns what s holds, for another node. s.mu must be held and s
// offline.
func (s *session) export() *store.SessionState {
	st := &store.SessionState{Session: s.record()}
	st.Session.Will, st.Session.WillAt = nil, time.Time{}
	for sub := range s.subs.all() {
		st.Subscriptions = append(st.Subscriptions, sub)
	}
	out := slices.Collect(maps.Values(s.inflight))
	out = append(out, s.queue...)
	slices.SortFunc(out, bySeq)
	for _, o := range out {
		st.Outbound = append(st.Outbound, *o)
	}
	for id, token := range s.inQoS2 {
		st.InboundQoS2 = append(st.InboundQoS2, store.Inbound{PacketID: id, Token: token})
	}
	slices.SortFunc(st.InboundQoS2, store.ByPacketID)
	return st
}

// ImportSession makes st, a persistent session released by another node,
// this node's, replacing any older copy here, and returns once it is
// stored. The client about to attach resumes it.
func (b *Broker) ImportSession(st *store.SessionState) error { return b.importSession(st, true) }

// AdoptSession makes st, a session as the shared store holds it (read
// with its LoadSession), this node's: the node that had it released it,
// or died.
func (b *Broker) AdoptSession(st *store.SessionState) error { return b.importSession(st, false) }

// importSession installs st; write: it is not in this node's store yet.
func (b *Broker) importSession(st *store.SessionState, write bool) error {
	id := st.Session.ClientID
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return errShutdown
		}
		var t store.Ticket
		if old := b.sessions[id]; old != nil {
			if b.endLive(old) {
				continue
			}
			// A stale copy: what came is newer. With a shared store what
			// came is the stored session itself, which stays.
			if write {
				_, t = b.discard(old)
			} else {
				b.unlink(old)
			}
			old.mu.Lock()
			old.dropQueue()
			old.mu.Unlock()
		}
		s := newSession(b, id, false)
		s.client.Store(&auth.Client{ClientID: id, Username: st.Session.Username,
			UsernameFlag: st.Session.UsernameFlag, CertUsername: st.Session.CertUsername, Version: st.Session.Version})
		s.version = st.Session.Version
		s.expiry = st.Session.ExpiryInterval
		s.mu.Lock()
		b.load(s, st)
		if write {
			t = max(t, s.setPersistent(true))
		} else {
			s.persistent = true
		}
		s.mu.Unlock()
		b.sessions[id] = s
		b.mu.Unlock()
		return b.wait(t)
	}
}

// handOver passes a shared group's message that no member here can take
// to another node's member; false: there is no cluster or none took it.
func (b *Broker) handOver(m *Message, group, filter string) bool {
	return b.cluster != nil && b.cluster.HandOver(m, group, filter)
}
