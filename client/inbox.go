package client

import (
	"sync"

	"github.com/ternmq/tern/packet"
)

// inbox queues received messages for the delivery goroutine. It is
// unbounded so that the reader never waits for OnMessage: a handler that
// publishes at QoS 1 needs the reader to read its PUBACK.
type inbox struct {
	mu         sync.Mutex
	cond       sync.Cond // signalled on push, end and stop; L is &mu
	q          []*packet.Publish
	head       int             // q[head:] is waiting
	stopped    bool            // Close or Disconnect: no further OnMessage calls
	ended      bool            // the reader has returned: nothing more will come
	busy       bool            // an OnMessage call is in progress
	disconnect bool            // Disconnect came during that call: send DISCONNECT after it
	cur        *packet.Publish // the message of the call in progress
}

func (b *inbox) init() { b.cond.L = &b.mu }

func (b *inbox) push(p *packet.Publish) {
	b.mu.Lock()
	b.q = append(b.q, p)
	b.mu.Unlock()
	b.cond.Signal()
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
		b.q, b.head = nil, 0
		return nil, false
	}
	p = b.q[b.head]
	b.q[b.head] = nil
	b.head++
	if b.head == len(b.q) {
		b.q, b.head = b.q[:0], 0
	}
	b.busy, b.cur = true, p
	return p, true
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

// deliverLoop hands messages to the handlers or OnMessage and acknowledges each when the
// handler returns.
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
		if !c.router.Route(p) && c.opts.OnMessage != nil {
			c.opts.OnMessage(p)
		}
		c.ack(p)
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
func (c *Client) receivedAfter() map[uint16]bool {
	c.inbox.mu.Lock()
	defer c.inbox.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[uint16]bool, len(c.received))
	for id, acked := range c.received {
		if acked || !c.inbox.stopped {
			next[id] = true
		}
	}
	if p := c.inbox.cur; p != nil && p.QoS == 2 {
		if _, ok := c.received[p.PacketID]; ok {
			next[p.PacketID] = true
		}
	}
	return next
}
