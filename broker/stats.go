package broker

import "sync/atomic"

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Connections      int64 // currently connected clients
	ConnectionsTotal int64 // accepted CONNECTs since start
	Sessions         int64 // live and offline sessions
	Subscriptions    int64
	Retained         int64
	MessagesIn       int64 // PUBLISH packets received from clients
	MessagesOut      int64 // PUBLISH packets sent to clients
	QueuedBytes      int64 // bytes of messages waiting in session queues
	DroppedQueueFull int64 // messages dropped because a queue limit was reached
	RefusedQueueFull int64 // messages refused (RefusePublisher) because a queue limit was reached
	RefusedConns     int64 // connections closed at once by a connection limit
	Throttled        int64 // times a client's reader paused for its message or byte rate
	DroppedSlow      int64 // QoS 0 messages dropped because a client's write buffer was full
	DroppedExpired   int64 // messages that expired before delivery
	// NotAuthorized counts deliveries withheld because the receiving
	// client may not read the topic.
	NotAuthorized int64
	// DroppedNoMember counts messages a shared subscription group could
	// not take: no member may read the topic.
	DroppedNoMember int64
	// RetainedRefused counts retained messages delivered but not kept:
	// the retained set was at its limit.
	RetainedRefused int64
	// Before CONNACK: connections closed for a packet larger than
	// MaxConnectSize, and for want of MaxPreAuthMemory; the bytes of
	// packets being read before CONNACK now.
	RefusedConnectSize   int64
	RefusedPreAuthMemory int64
	PreAuthMemory        int64
}

type counters struct {
	connections, connectionsTotal          atomic.Int64
	messagesIn, messagesOut                atomic.Int64
	droppedQueueFull, droppedSlow, expired atomic.Int64
	refused                                atomic.Int64
	queuedBytes                            atomic.Int64 // queuedSize of every session queue together
	refusedConns, throttled                atomic.Int64
	notAuthorized, droppedNoMember         atomic.Int64
	retainedRefused                        atomic.Int64
	// preAuth is the MaxPreAuthMemory budget in use (preauth.go).
	preAuth, refusedConnectSize, refusedPreAuth atomic.Int64
}

// Stats returns the current counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	sessions := int64(len(b.sessions))
	b.mu.Unlock()
	return Stats{
		Connections:          b.stats.connections.Load(),
		ConnectionsTotal:     b.stats.connectionsTotal.Load(),
		Sessions:             sessions,
		Subscriptions:        int64(b.subs.Len()),
		Retained:             int64(b.retained.Len()),
		MessagesIn:           b.stats.messagesIn.Load(),
		MessagesOut:          b.stats.messagesOut.Load(),
		QueuedBytes:          b.stats.queuedBytes.Load(),
		DroppedQueueFull:     b.stats.droppedQueueFull.Load(),
		RefusedQueueFull:     b.stats.refused.Load(),
		RefusedConns:         b.stats.refusedConns.Load(),
		Throttled:            b.stats.throttled.Load(),
		DroppedSlow:          b.stats.droppedSlow.Load(),
		DroppedExpired:       b.stats.expired.Load(),
		NotAuthorized:        b.stats.notAuthorized.Load(),
		DroppedNoMember:      b.stats.droppedNoMember.Load(),
		RetainedRefused:      b.stats.retainedRefused.Load(),
		RefusedConnectSize:   b.stats.refusedConnectSize.Load(),
		RefusedPreAuthMemory: b.stats.refusedPreAuth.Load(),
		PreAuthMemory:        b.stats.preAuth.Load(),
	}
}
