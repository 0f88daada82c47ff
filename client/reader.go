package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ternmq/tern/packet"
)

// errServerDisconnect stops the reader after a DISCONNECT from the server;
// shutdown has already run.
var errServerDisconnect = errors.New("client: server sent DISCONNECT")

// errEnded stops the reader when the connection ended while it waited for
// room in the inbox; shutdown has already run.
var errEnded = errors.New("client: connection ended")

// readLoop reads and handles packets until the connection ends.
func (c *Client) readLoop() {
	defer c.wg.Done()
	defer close(c.readerDone)
	// Nothing more will be queued for OnMessage; what is queued is still
	// delivered unless Close or Disconnect stopped delivery.
	defer c.inbox.end()
	for {
		pk, err := packet.ReadPacket(c.br, c.version, c.inMaxSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("client: connection closed by server: %w", err)
			} else {
				err = fmt.Errorf("client: read: %w", err)
			}
			c.fail(err)
			return
		}
		c.lastRead.Store(int64(time.Since(c.w.start)))
		if c.opts.Trace != nil {
			c.opts.Trace(false, pk)
		}
		if err := c.handle(pk); err != nil {
			if err != errServerDisconnect && err != errEnded {
				c.fail(err)
			}
			return
		}
	}
}

// fail ends the connection for err. When err carries a reason code the
// server should hear (a malformed or unexpected packet), a v5 client says
// so with DISCONNECT first.
func (c *Client) fail(err error) {
	var code packet.ReasonCode
	if c.version == packet.V5 && errors.As(err, &code) && code.IsFailure() {
		c.mu.Lock()
		ending := c.ending || c.disconnecting
		c.mu.Unlock()
		if !ending {
			c.w.write(context.Background(), &packet.Disconnect{ReasonCode: code}, true) // best effort: we close anyway
		}
	}
	c.shutdown(err)
}

// handle acts on one packet from the server. Its error ends the connection.
func (c *Client) handle(pk packet.Packet) error {
	switch p := pk.(type) {
	case *packet.Publish:
		return c.handlePublish(p)
	case *packet.Puback:
		c.handlePuback(p)
	case *packet.Pubrec:
		c.handlePubrec(p)
	case *packet.Pubrel:
		c.handlePubrel(p)
	case *packet.Pubcomp:
		c.handlePubcomp(p)
	case *packet.Suback:
		c.complete(p.PacketID, packet.SUBSCRIBE, p, func(f *flow) error {
			// [MQTT-3.8.4-5] one return code per topic filter.
			if len(p.ReasonCodes) != f.n {
				return fmt.Errorf("client: SUBACK has %d codes for %d filters: %w", len(p.ReasonCodes), f.n, packet.ProtocolError)
			}
			return nil
		})
	case *packet.Unsuback:
		c.complete(p.PacketID, packet.UNSUBSCRIBE, p, func(f *flow) error {
			if c.version == packet.V5 && len(p.ReasonCodes) != f.n {
				return fmt.Errorf("client: UNSUBACK has %d codes for %d filters: %w", len(p.ReasonCodes), f.n, packet.ProtocolError)
			}
			return nil
		})
	case *packet.Pingresp:
		c.mu.Lock()
		c.pingOut = false
		c.mu.Unlock()
	case *packet.Disconnect:
		var err error = &ReasonError{Type: packet.DISCONNECT, Code: p.ReasonCode, Reason: p.Properties.ReasonString}
		if c.version != packet.V5 {
			// A server never sends DISCONNECT before v5.
			err = fmt.Errorf("client: server sent DISCONNECT: %w", packet.ProtocolError)
		}
		c.shutdown(err)
		return errServerDisconnect
	case *packet.Auth:
		return c.handleAuth(p)
	default:
		// CONNECT, CONNACK again, SUBSCRIBE, UNSUBSCRIBE, PINGREQ.
		return fmt.Errorf("client: unexpected %s from server: %w", pk.Type(), packet.ProtocolError)
	}
	return nil
}

// take removes and returns the flow under id if it is of kind (and, for a
// PUBLISH, qos; 0 matches either).
func (c *Client) take(id uint16, kind packet.Type, qos byte) *flow {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.pending[id]
	if f == nil || f.kind != kind || (qos != 0 && f.qos != qos) {
		return nil
	}
	delete(c.pending, id)
	return f
}

// complete ends the flow under id with pk; check may turn pk into an
// error. An answer to no flow of ours is ignored: the caller may have been
// failed by Disconnect already.
func (c *Client) complete(id uint16, kind packet.Type, pk packet.Packet, check func(*flow) error) {
	f := c.take(id, kind, 0)
	if f == nil {
		return
	}
	f.done(result{pk: pk, err: check(f)})
}

// finishPublish ends an outbound QoS 1/2 flow and frees its quota slot.
func (c *Client) finishPublish(f *flow, pk packet.Packet, code packet.ReasonCode, reason string) {
	<-c.quota
	var err error
	if code.IsFailure() {
		err = &ReasonError{Type: pk.Type(), Code: code, Reason: reason}
	}
	f.done(result{pk: pk, err: err})
}

func (c *Client) handlePuback(p *packet.Puback) {
	if f := c.take(p.PacketID, packet.PUBLISH, 1); f != nil {
		c.finishPublish(f, p, p.ReasonCode, p.Properties.ReasonString)
	}
}

func (c *Client) handlePubrec(p *packet.Pubrec) {
	c.mu.Lock()
	f := c.pending[p.PacketID]
	if f == nil || f.kind != packet.PUBLISH || f.qos != 2 {
		c.mu.Unlock()
		if c.version == packet.V5 {
			c.reply(&packet.Pubrel{PacketID: p.PacketID, ReasonCode: packet.PacketIDNotFound})
		}
		return
	}
	if p.ReasonCode.IsFailure() {
		// MQTT 5.0 4.3.3: a failure PUBREC ends the flow; no PUBREL.
		delete(c.pending, p.PacketID)
		c.mu.Unlock()
		c.finishPublish(f, p, p.ReasonCode, p.Properties.ReasonString)
		return
	}
	f.pubrel = true
	c.mu.Unlock()
	// [MQTT-4.3.3-1] answer PUBREC with PUBREL; [MQTT-4.6.0-4] in PUBREC order,
	// which holds as this goroutine sends them all, or a Session's store
	// writer, in the order it was told.
	send := func() { c.reply(&packet.Pubrel{PacketID: p.PacketID}) }
	if f.onPubrec != nil {
		f.onPubrec(send)
		return
	}
	send()
}

func (c *Client) handlePubcomp(p *packet.Pubcomp) {
	if f := c.take(p.PacketID, packet.PUBLISH, 2); f != nil {
		c.finishPublish(f, p, p.ReasonCode, p.Properties.ReasonString)
	}
}

func (c *Client) handlePubrel(p *packet.Pubrel) {
	c.mu.Lock()
	_, known := c.received[p.PacketID]
	delete(c.received, p.PacketID)
	c.mu.Unlock()
	pc := &packet.Pubcomp{PacketID: p.PacketID}
	if !known && c.version == packet.V5 {
		pc.ReasonCode = packet.PacketIDNotFound
	}
	// [MQTT-4.3.3-2] answer PUBREL with PUBCOMP, also for an identifier we
	// do not know (its PUBCOMP may have been lost).
	c.reply(pc)
}

// handlePublish resolves a topic alias and hands the message on, once.
func (c *Client) handlePublish(p *packet.Publish) error {
	if c.version == packet.V5 && p.Properties.TopicAlias != nil {
		a := *p.Properties.TopicAlias
		if a == 0 || a > c.aliasMax {
			// The server may use aliases 1 to our Topic Alias Maximum only.
			return fmt.Errorf("client: PUBLISH topic alias %d, maximum %d: %w", a, c.aliasMax, packet.TopicAliasInvalid)
		}
		if p.Topic == "" {
			t, ok := c.aliases[a]
			if !ok {
				return fmt.Errorf("client: PUBLISH with unknown topic alias %d: %w", a, packet.ProtocolError)
			}
			p.Topic = t
		} else {
			if c.aliases == nil {
				c.aliases = make(map[uint16]string)
			}
			c.aliases[a] = p.Topic
		}
	}
	if p.Topic == "" {
		return fmt.Errorf("client: PUBLISH without topic name: %w", packet.ProtocolError)
	}
	if p.QoS == 2 {
		c.mu.Lock()
		pubrecSent, dup := c.received[p.PacketID]
		if !dup {
			c.received[p.PacketID] = false
		}
		c.mu.Unlock()
		if dup {
			// [MQTT-4.3.3-2] a retransmission before PUBREL: acknowledge
			// again if already acknowledged, never deliver twice.
			if pubrecSent {
				c.reply(&packet.Pubrec{PacketID: p.PacketID})
			}
			return nil
		}
	}
	if !c.inbox.push(p, msgSize(p, c.version)) {
		return errEnded
	}
	return nil
}

// ack acknowledges a message whose delivery is done: PUBACK for QoS 1
// [MQTT-4.3.2-2], PUBREC for QoS 2 unless a PUBREL already ended the flow.
// Acknowledgements leave in the order the messages came, [MQTT-4.6.0-2]
// [MQTT-4.6.0-3], as one goroutine delivers in that order.
func (c *Client) ack(p *packet.Publish) {
	switch p.QoS {
	case 1:
		c.reply(&packet.Puback{PacketID: p.PacketID})
	case 2:
		c.mu.Lock()
		_, ok := c.received[p.PacketID]
		if ok {
			c.received[p.PacketID] = true
		}
		c.mu.Unlock()
		if ok {
			c.reply(&packet.Pubrec{PacketID: p.PacketID})
		}
	}
}

// reply sends a packet the protocol makes the client answer with. A write
// failure ends the connection, and Err reports it; there is no caller to
// return it to.
func (c *Client) reply(p packet.Packet) {
	_ = c.send(context.Background(), p)
}
