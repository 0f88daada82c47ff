package cluster

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts a node's cluster traffic since it started.
type Stats struct {
	Forwarded     uint64 // messages published here and sent to NATS
	ForwardFailed uint64 // not sent: NATS refused them (too large, connection closed)
	Received      uint64 // messages from other nodes delivered here
	Malformed     uint64 // forwarded messages that did not decode
	// Dropped counts messages from other nodes lost here because this
	// node fell behind (NATS drops what a slow subscriber cannot take):
	// between nodes, delivery is at most once.
	Dropped uint64
	// RetainedPending counts retained messages set here that wait for the
	// stream (this node is cut off, or JetStream has no majority).
	RetainedPending uint64
	HandedOver      uint64 // shared-group messages passed to another node's member
	Takeovers       uint64 // client ids taken over from another node
	Released        uint64 // client ids given up to another node
	// Adopted counts persistent sessions brought here from the
	// replicated store, Replayed the messages read again from the stream
	// for them (what their previous node had not routed to them).
	Adopted, Replayed uint64
	// Reforwarded counts QoS 2 messages forwarded again because their
	// client retransmitted them, perhaps after their first node died.
	Reforwarded uint64
	// StreamLag is how many messages of the stream this node has not
	// routed yet.
	StreamLag uint64
}

type counters struct {
	forwarded, forwardFailed, received, malformed atomic.Uint64
	handedOver, takeovers, released               atomic.Uint64
	adopted, replayed, reforwarded                atomic.Uint64
}

// Stats returns the node's counts.
func (n *Node) Stats() Stats {
	c := &n.stats
	return Stats{
		Forwarded: c.forwarded.Load(), ForwardFailed: c.forwardFailed.Load(), Received: c.received.Load(),
		Malformed: c.malformed.Load(), HandedOver: c.handedOver.Load(), Takeovers: c.takeovers.Load(),
		Released: c.released.Load(), Dropped: n.routes.dropped() + n.shares.dropped(),
		RetainedPending: n.ret.pendingCount(), Adopted: c.adopted.Load(), Replayed: c.replayed.Load(),
		Reforwarded: c.reforwarded.Load(), StreamLag: n.fwd.lag.Load(),
	}
}

// logLimiter logs a failure of one kind at most once a minute: a failing
// NATS must not flood the log with one line per message.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (n *Node) logOnce(kind, msg string, args ...any) {
	l := &n.logLimit
	l.mu.Lock()
	now := time.Now()
	if l.last == nil {
		l.last = make(map[string]time.Time)
	}
	due := now.Sub(l.last[kind]) >= time.Minute
	if due {
		l.last[kind] = now
	}
	l.mu.Unlock()
	if due {
		n.log.Warn(msg, args...)
	}
}
