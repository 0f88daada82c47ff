package client

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ternmq/tern/packet"
)

// Defaults for the zero values of Options.InboxSize and Options.InboxBytes.
const (
	DefaultInboxSize  = 1024
	DefaultInboxBytes = 64 << 20
)

// msgOverhead is what a queued message costs beyond its encoded size and
// its topic string: the decoded struct and the queue slot.
const msgOverhead = int(unsafe.Sizeof(packet.Publish{})) + int(unsafe.Sizeof(queued{}))

// msgSize is what p counts for in the inbox.
func msgSize(p *packet.Publish, version byte) int {
	return max(p.Size(version), 0) + len(p.Topic) + msgOverhead
}

// inbox queues received messages for the delivery goroutine, so that the
// reader never waits for a handler to return. It is bounded; when it is
// full the reader waits for room without reading the connection, and TCP
// pushes back on the server. Nothing is dropped.
//
// Invariant. The reader queues a message at once when the queue is empty;
// otherwise only while the queued bytes stay within maxBytes and either
// fewer than maxMsgs messages are queued or a flow of ours (a QoS 1/2
// publish, a subscribe or unsubscribe, from any goroutine) awaits the
// server's answer. Else it waits until delivery makes room, a flow starts,
// delivery stops or the connection ends.
//
// Why the exception: a handler that publishes at QoS 1 waits for a PUBACK
// that only the reader can read, possibly behind messages that do not fit.
// Stopping there would deadlock; so while an answer is awaited the queue
// may grow past maxMsgs, up to maxBytes. Past maxBytes the reader waits
// even then: a handler waiting for an answer the server sent after more
// than maxBytes of messages waits until its context ends (or the
// connection does), and delivery goes on after that.
//
// Memory: at most maxMsgs messages while no answer is awaited, and never
// more than maxBytes (each message counted by msgSize) or one message, if
// that one is larger. Besides the queue: the message a handler is running
// with, the one the reader holds while it waits, and the reader's buffer.
type inbox struct {
	mu   sync.Mutex
	cond sync.Cond // the delivery goroutine's: signalled on push, end and stop; L is &mu
	room sync.Cond // the reader's: signalled on room, stop, hangUp and wake; L is &mu

	maxMsgs  int         // <= 0: no bound on messages
	maxBytes int         // <= 0: no bound on bytes
	awaiting func() bool // whether a flow awaits the server's answer; takes Client.mu

	q          []queued
	head       int             // q[head:] is waiting
	bytes      int             // the sizes of q[head:]
	stopped    bool            // Close or Disconnect: no further OnMessage calls
	ended      bool            // the reader has returned: nothing more will come
	gone       bool            // the connection ended: the reader must not wait
	busy       bool            // an OnMessage call is in progress
	disconnect bool            // Disconnect came during that call: send DISCONNECT after it
	cur        *packet.Publish // the message of the call in progress

	parked atomic.Bool // the reader waits for room, not reading the connection
	// heldBack is set when the reader parks and cleared when the queue
	// empties: the server's packets may be waiting behind messages.
	heldBack atomic.Bool
}

type queued struct {
	p    *packet.Publish
	size int
}

func (b *inbox) init(maxMsgs, maxBytes int, awaiting func() bool) {
	b.cond.L = &b.mu
	b.room.L = &b.mu
	b.maxMsgs, b.maxBytes, b.awaiting = maxMsgs, maxBytes, awaiting
}

// admits reports whether the reader may queue a message of size now (see
// the invariant on inbox). mu must be held.
func (b *inbox) admits(size int) bool {
	n := len(b.q) - b.head
	switch {
	case n == 0 || b.stopped || b.gone:
		return true
	case b.maxBytes > 0 && b.bytes+size > b.maxBytes:
		return false
	case b.maxMsgs <= 0 || n < b.maxMsgs:
		return true
	default:
		return b.awaiting()
	}
}

// push queues p, which counts as size bytes, waiting for room if need be.
// After Close or Disconnect p is dropped: delivery is over. It reports
// false when the connection has ended: the reader should stop.
func (b *inbox) push(p *packet.Publish, size int) bool {
	b.mu.Lock()
	if !b.admits(size) {
		for {
			// parked is set before admits looks at awaiting, so that a
			// flow starting after that look finds it set and wakes us.
			b.parked.Store(true)
			b.heldBack.Store(true)
			if b.admits(size) {
				break
			}
			b.room.Wait()
		}
		b.parked.Store(false)
	}
	if b.stopped {
		b.mu.Unlock()
		return true
	}
	b.q = append(b.q, queued{p, size})
	b.bytes += size
	gone := b.gone
	b.mu.Unlock()
	b.cond.Signal()
	return !gone
}

// wake makes a waiting reader look again: a flow has started.
func (b *inbox) wake() {
	if !b.parked.Load() {
		return
	}
	b.mu.Lock()
	b.mu.Unlock() //nolint:staticcheck // orders the broadcast after the reader's Wait
	b.room.Broadcast()
}

// hangUp says that the connection has ended: the reader must not wait.
func (b *inbox) hangUp() {
	b.mu.Lock()
	b.gone = true
	b.mu.Unlock()
	b.room.Broadcast()
}

// end says that nothing more will be pushed.
func (b *inbox) end() {
	b.mu.Lock()
	b.ended = true
	b.mu.Unlock()
	b.cond.Signal()
}

// stop ends delivery: no OnMessage call starts after it. With disconnect,
// when a call is in progress, it asks the delivery goroutine to disconnect
// once that call returns and its message is acknowledged, and reports true.
func (b *inbox) stop(disconnect bool) (deferred bool) {
	b.mu.Lock()
	b.stopped = true
	if disconnect && b.busy {
		b.disconnect = true
		deferred = true
	}
	b.mu.Unlock()
	b.cond.Signal()
	b.room.Broadcast()
	return deferred
}

// next waits for the next message to deliver; ok is false when delivery is
// over: stopped, or ended with the queue drained.
func (b *inbox) next() (p *packet.Publish, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.stopped && b.head == len(b.q) && !b.ended {
		b.cond.Wait()
	}
	if b.stopped || b.head == len(b.q) {
		b.q, b.head, b.bytes = nil, 0, 0
		return nil, false
	}
	e := b.q[b.head]
	b.q[b.head] = queued{}
	b.head++
	b.bytes -= e.size
	if b.head == len(b.q) {
		b.q, b.head = b.q[:0], 0
		b.heldBack.Store(false)
	}
	b.busy, b.cur = true, e.p
	b.room.Signal()
	return e.p, true
}

// done marks the OnMessage call returned and reports whether a Disconnect
// waits for it.
func (b *inbox) done() (disconnect bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy, b.cur = false, nil
	disconnect, b.disconnect = b.disconnect, false
	return disconnect
}

// deliverLoop hands messages to the handlers or OnMessage and acknowledges
// each when the handler returns, or, with Options.ManualAck, when Ack says
// so.
func (c *Client) deliverLoop() {
	defer c.wg.Done()
	if c.opts.after != nil {
		// A Session's previous connection may still be delivering: one
		// goroutine at a time, in order.
		<-c.opts.after
	}
	for {
		p, ok := c.inbox.next()
		if !ok {
			return
		}
		manual := c.opts.ManualAck && p.QoS > 0
		if manual {
			// Before the handler runs, which may Ack at once.
			c.acks.add(p)
		}
		handled := c.router.Route(p)
		if !handled && c.opts.OnMessage != nil {
			c.opts.OnMessage(p)
			handled = true
		}
		switch {
		case !manual:
			c.ack(p)
		case !handled:
			// Nobody will Ack a message nobody saw; it would hold up
			// the acknowledgements behind it.
			_ = c.Ack(p)
		}
		if c.inbox.done() {
			// The error is Err's to report; Disconnect already returned.
			_ = c.disconnect()
		}
	}
}

// receivedAfter is the inbound QoS 2 state for a Session's next connection,
// once the reader has returned: the ids of the messages handed to the
// application or still to be (delivery goes on after a loss unless Close or
// Disconnect stopped it), so that a resend is acknowledged, not delivered.
// With ManualAck only the acknowledged ones: the others can no longer be
// acknowledged (Ack works on the connection that received a message), so
// their resends are delivered again, to be acknowledged on the new
// connection.
func (c *Client) receivedAfter() map[uint16]bool {
	c.inbox.mu.Lock()
	defer c.inbox.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[uint16]bool, len(c.received))
	for id, acked := range c.received {
		if acked || (!c.inbox.stopped && !c.opts.ManualAck) {
			next[id] = true
		}
	}
	if p := c.inbox.cur; p != nil && p.QoS == 2 && !c.opts.ManualAck {
		if _, ok := c.received[p.PacketID]; ok {
			next[p.PacketID] = true
		}
	}
	return next
}
