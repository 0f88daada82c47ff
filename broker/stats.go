package broker

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of the broker's state and counters, taken by
// Stats(). Counters (Total, Received, Sent, Refused, Dropped, ...) count
// since the broker started and only grow; the others are levels now.
type Stats struct {
	Connections      int64 // clients connected now (CONNACK sent, not yet gone)
	ConnectionsTotal int64 // CONNECTs accepted since start
	ConnectionsMax   int64 // most clients connected at once since start
	Sessions         int64 // sessions now, connected and offline
	SessionsExpired  int64 // offline sessions ended by their expiry interval
	Subscriptions    int64 // subscriptions now, shared ones included
	Retained         int64 // retained messages now
	// RetainedBytes is what the retained messages count against
	// MaxRetainedBytes: topics and payloads, plus an estimate of the
	// index (256 bytes per topic level).
	RetainedBytes int64

	// MessagesIn counts PUBLISH packets received from clients (a QoS 2
	// retransmission included), MessagesOut PUBLISH packets written to
	// clients' output (a resend with DUP included); by QoS below, the
	// QoS of the packet (for MessagesSentQoS: as granted to the
	// subscriber). Messages the server publishes itself (Publish, wills)
	// are not received from a client and count in MessagesOut only.
	MessagesIn          int64
	MessagesOut         int64
	MessagesReceivedQoS [3]int64
	MessagesSentQoS     [3]int64
	// BytesReceived and BytesSent are the bytes read from and written to
	// client connections, MQTT framing included (the bytes of a
	// WebSocket or TLS connection as the broker sees them, inside the
	// transport); a connection refused before CONNACK counts too.
	BytesReceived int64
	BytesSent     int64

	Queued      int64 // messages waiting in session queues now (for a free in-flight slot or for their client)
	QueuedBytes int64 // their topics and payloads, what MaxQueuedBytesTotal bounds
	Inflight    int64 // QoS 1 and 2 messages sent and not yet acknowledged (PUBREL pending included), all sessions

	Kicked int64 // connections ended by Disconnect (an administrator)
	// AuthFailures counts CONNECTs refused for bad credentials or as not
	// authorized (RefusedConnects.BadCredentials + NotAuthorized),
	// enhanced authentication included.
	AuthFailures    int64
	RefusedConnects RefusedCounts
	Dropped         DroppedCounts
	Throttled       int64 // times a client's reader paused for its message or byte rate
	PreAuthMemory   int64 // bytes of packets being read before CONNACK now (MaxPreAuthMemory)
}

// RefusedCounts counts connections refused, by reason, since start. A
// client refused with a CONNACK counts once, under the reason its
// CONNACK gives, but for KeepAlive and Other, which have no code of their
// own.
type RefusedCounts struct {
	BadCredentials    int64 // bad username or password (0x04 / 0x86), enhanced authentication included
	NotAuthorized     int64 // not authorized (0x05 / 0x87): by the Authenticator, or a will it may not publish
	ClientIDRejected  int64 // client id refused (0x02 / 0x85): empty, too long, denied, or another identity's session
	ProtocolVersion   int64 // unknown protocol level (0x01)
	ServerUnavailable int64 // the Authenticator or Authorizer failed or timed out (0x03 / 0x88 / 0x89)
	ConnectSize       int64 // a packet before CONNACK larger than MaxConnectSize: closed without CONNACK
	PreAuthMemory     int64 // no room left in MaxPreAuthMemory: closed without CONNACK
	ConnectionLimit   int64 // MaxConnections, MaxConnectionsPerIP or ConnectRatePerIP: closed before reading
	KeepAlive         int64 // a 3.1.1 keep alive beyond MaxKeepAlive
	Other             int64 // anything else: a malformed CONNECT, a bad will, an unsupported feature or authentication method
}

// DroppedCounts counts messages not delivered (or not kept), by reason,
// since start; one message to many sessions may count once per session.
type DroppedCounts struct {
	QueueFull      int64 // a session's queue (or all queues together) at its limit; QueuePolicy DropNewest or DropOldest
	Slow           int64 // QoS 0 to a client whose write buffer (MaxWriteBuffer) was full
	Expired        int64 // message expiry passed before delivery, queued or retained
	NotAuthorized  int64 // the subscriber may not read the topic
	NoSharedMember int64 // no member of a shared subscription group may read it
	TooLarge       int64 // larger than the client's Maximum Packet Size [MQTT-3.1.2-25]
	RetainedFull   int64 // delivered, but not kept as retained: the retained set at its limit
	QueueRefused   int64 // refused for a full queue under QueuePolicy RefusePublisher
}

// refusal is a reason a connection was refused: an index into
// counters.refused, in the order of RefusedCounts.
type refusal uint8

const (
	notRefused refusal = iota // not a refusal (the client went away), or counted already
	refusedBadCredentials
	refusedNotAuthorized
	refusedClientID
	refusedProtocolVersion
	refusedServerUnavailable
	refusedConnectSize
	refusedPreAuthMemory
	refusedConnectionLimit
	refusedKeepAlive
	refusedOther
	numRefusals
)

type counters struct {
	connections, connectionsTotal, connectionsMax atomic.Int64
	sessionsExpired, kicked                       atomic.Int64
	// By QoS; MessagesIn and MessagesOut are their sums.
	messagesIn, messagesOut [3]atomic.Int64
	bytesIn, bytesOut       atomic.Int64
	// queued and queuedBytes are the length and queuedSize of every
	// session queue together (queue.go).
	queued, queuedBytes atomic.Int64
	refused             [numRefusals]atomic.Int64
	// Dropped, as in DroppedCounts.
	droppedQueueFull, droppedSlow, expired  atomic.Int64
	notAuthorized, droppedNoMember          atomic.Int64
	tooLarge, retainedRefused, queueRefused atomic.Int64
	throttled                               atomic.Int64
	// preAuth is the MaxPreAuthMemory budget in use (preauth.go).
	preAuth atomic.Int64
}

// dropCounter returns the counter of messages dropped for r.
func (k *counters) dropCounter(r DropReason) *atomic.Int64 {
	switch r {
	case DropQueueFull:
		return &k.droppedQueueFull
	case DropSlow:
		return &k.droppedSlow
	case DropExpired:
		return &k.expired
	case DropNotAuthorized:
		return &k.notAuthorized
	case DropNoSharedMember:
		return &k.droppedNoMember
	case DropTooLarge:
		return &k.tooLarge
	case DropQueueRefused:
		return &k.queueRefused
	}
	panic("broker: unknown DropReason " + r.String())
}

// connected counts a connection accepted, and the peak.
func (k *counters) connected() {
	n := k.connections.Add(1)
	k.connectionsTotal.Add(1)
	for {
		m := k.connectionsMax.Load()
		if n <= m || k.connectionsMax.CompareAndSwap(m, n) {
			return
		}
	}
}

// Stats returns a snapshot of the broker's state and counters. It takes
// each session's lock in turn (for Inflight), never two at once: cheap
// enough to call every second, not for every message.
func (b *Broker) Stats() Stats {
	sessions := b.sessionList()
	var inflight int64
	for _, s := range sessions {
		s.mu.Lock()
		inflight += int64(len(s.inflight))
		s.mu.Unlock()
	}
	k := &b.stats
	st := Stats{
		Connections:      k.connections.Load(),
		ConnectionsTotal: k.connectionsTotal.Load(),
		ConnectionsMax:   k.connectionsMax.Load(),
		Sessions:         int64(len(sessions)),
		SessionsExpired:  k.sessionsExpired.Load(),
		Subscriptions:    int64(b.subs.Len()),
		BytesReceived:    k.bytesIn.Load(),
		BytesSent:        k.bytesOut.Load(),
		Queued:           k.queued.Load(),
		QueuedBytes:      k.queuedBytes.Load(),
		Inflight:         inflight,
		Kicked:           k.kicked.Load(),
		Throttled:        k.throttled.Load(),
		PreAuthMemory:    k.preAuth.Load(),
		RefusedConnects: RefusedCounts{
			BadCredentials:    k.refused[refusedBadCredentials].Load(),
			NotAuthorized:     k.refused[refusedNotAuthorized].Load(),
			ClientIDRejected:  k.refused[refusedClientID].Load(),
			ProtocolVersion:   k.refused[refusedProtocolVersion].Load(),
			ServerUnavailable: k.refused[refusedServerUnavailable].Load(),
			ConnectSize:       k.refused[refusedConnectSize].Load(),
			PreAuthMemory:     k.refused[refusedPreAuthMemory].Load(),
			ConnectionLimit:   k.refused[refusedConnectionLimit].Load(),
			KeepAlive:         k.refused[refusedKeepAlive].Load(),
			Other:             k.refused[refusedOther].Load(),
		},
		Dropped: DroppedCounts{
			QueueFull:      k.droppedQueueFull.Load(),
			Slow:           k.droppedSlow.Load(),
			Expired:        k.expired.Load(),
			NotAuthorized:  k.notAuthorized.Load(),
			NoSharedMember: k.droppedNoMember.Load(),
			TooLarge:       k.tooLarge.Load(),
			RetainedFull:   k.retainedRefused.Load(),
			QueueRefused:   k.queueRefused.Load(),
		},
	}
	st.AuthFailures = st.RefusedConnects.BadCredentials + st.RefusedConnects.NotAuthorized
	for q := range 3 {
		st.MessagesReceivedQoS[q] = k.messagesIn[q].Load()
		st.MessagesSentQoS[q] = k.messagesOut[q].Load()
		st.MessagesIn += st.MessagesReceivedQoS[q]
		st.MessagesOut += st.MessagesSentQoS[q]
	}
	b.retained.mu.RLock()
	st.Retained, st.RetainedBytes = int64(b.retained.n), b.retained.bytes
	b.retained.mu.RUnlock()
	return st
}

// sessionList returns the sessions now, for walking without b.mu.
func (b *Broker) sessionList() []*session {
	b.mu.Lock()
	defer b.mu.Unlock()
	ss := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		ss = append(ss, s)
	}
	return ss
}

// Observer is told how long the broker takes to deliver messages; see
// Options.Observer. Its methods run on the broker's delivery path, with
// the receiving session's lock held: they must be quick, must not block
// and must not call back into the broker.
type Observer interface {
	// DeliveryLatency reports one delivery at qos (the QoS it goes to
	// the subscriber with): d is the time from the moment the broker had
	// read the PUBLISH (the read from the connection that brought its
	// last bytes; or Publish was called, or a will became due) to
	// the moment its copies for all the subscribers it went to at once
	// were appended to their output buffers, ready for the writers (the
	// clock is read once per message, not per subscriber: on some
	// machines reading it costs a system call). It covers authorization, hooks,
	// matching, the store writes submitted (not the wait for them) and
	// encoding. Messages that wait in a session's queue (for a free
	// in-flight slot or an offline client), resends, retained messages
	// sent on SUBSCRIBE and shared-subscription messages moved from a
	// departing member are not reported: their wait is the client's,
	// not the broker's.
	DeliveryLatency(qos byte, d time.Duration)
}
