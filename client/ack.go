package client

import (
	"errors"
	"slices"
	"sync"

	"github.com/ternmq/tern/packet"
)

// ErrNotAwaitingAck is returned by Ack for a QoS 1 or 2 message that is
// not waiting for its acknowledgement on the connection: already
// acknowledged, or received on another connection (one that has ended: the
// server sends the message again on the next).
var ErrNotAwaitingAck = errors.New("client: message not awaiting acknowledgement on this connection")

// ackQueue holds the QoS 1 and 2 messages handed to the application under
// Options.ManualAck until they are acknowledged, in the order they
// arrived. An acknowledgement leaves only when all before it may too:
// PUBACKs in the order of the PUBLISH packets [MQTT-4.6.0-2], PUBRECs
// likewise [MQTT-4.6.0-3].
type ackQueue struct {
	mu sync.Mutex // held while acknowledgements are sent, so that they leave in order
	q  []ackEntry
}

type ackEntry struct {
	p     *packet.Publish
	acked bool
}

func (a *ackQueue) add(p *packet.Publish) {
	a.mu.Lock()
	a.q = append(a.q, ackEntry{p: p})
	a.mu.Unlock()
}

// Ack acknowledges a message handed to a handler or OnMessage when
// Options.ManualAck is set: PUBACK for QoS 1, PUBREC for QoS 2. The
// acknowledgement is sent once every message that arrived before it on
// the connection is acknowledged too, as the protocol wants them in order;
// the server sends no more QoS 1 and 2 messages than the Receive Maximum
// (v5) while acknowledgements are outstanding. Ack may be called from any
// goroutine, the handler's included. A QoS 0 message needs none: Ack
// returns nil. After the connection has ended it returns the reason.
func (c *Client) Ack(p *packet.Publish) error {
	if !c.opts.ManualAck {
		return errors.New("client: Ack without Options.ManualAck")
	}
	if p.QoS == 0 {
		return nil
	}
	if c.ended() {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closedErr()
	}
	a := &c.acks
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.IndexFunc(a.q, func(e ackEntry) bool { return e.p == p })
	if i < 0 || a.q[i].acked {
		return ErrNotAwaitingAck
	}
	a.q[i].acked = true
	n := 0
	for n < len(a.q) && a.q[n].acked {
		c.ack(a.q[n].p)
		n++
	}
	clear(a.q[:n])
	a.q = a.q[n:]
	return nil
}

// Ack acknowledges p on the current connection, as Client.Ack. A message
// received on an earlier connection cannot be acknowledged any more
// (ErrNotAwaitingAck): the server sends it again, and it is delivered
// again.
func (s *Session) Ack(p *packet.Publish) error {
	if !s.opts.ManualAck {
		return errors.New("client: Ack without Options.ManualAck")
	}
	if p.QoS == 0 {
		return nil
	}
	c := s.Client()
	if c == nil {
		return ErrNotAwaitingAck
	}
	return c.Ack(p)
}
