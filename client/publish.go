package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// Publish sends p and returns when its QoS flow is complete: at once for
// QoS 0 (once written), on PUBACK for QoS 1, on PUBCOMP for QoS 2. It
// assigns the packet identifier to a copy; p is not modified and may be
// reused once Publish returns. A v5 failure reason code in the PUBACK or
// PUBREC (or PUBCOMP) is returned as a *ReasonError.
//
// If ctx ends first, Publish returns ctx's error, and the message is
// still sent and its flow completes in the background: it may have been
// delivered. That holds while the message is being written too, also to
// a server that stopped reading (Options.WriteTimeout ends such a
// connection).
func (c *Client) Publish(ctx context.Context, p *packet.Publish) error {
	if p.QoS == 0 {
		if err := c.checkPublish(p); err != nil {
			return err
		}
		return c.send(ctx, p)
	}
	answer := make(chan result, 1)
	if err := c.startFlow(ctx, &pubFlow{p: p, done: func(r result) { answer <- r }}); err != nil {
		return err
	}
	select {
	case r := <-answer:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pubFlow is a QoS 1/2 publish as one connection carries it: Publish's,
// or a Session's, which may be a resend.
type pubFlow struct {
	p      *packet.Publish
	id     uint16 // 0: new, the Client assigns one; else a resend under this id
	pubrel bool   // the flow had reached PUBREL: resend the PUBREL

	onID     func(id uint16)   // if set, told the new id before the PUBLISH is written
	onPubrec func(send func()) // if set, told of the PUBREC instead of sending PUBREL: it calls send (from any goroutine)
	done     func(result)      // the answer, or the connection's end (pk nil)
}

// startFlow sends pf's first packet and returns without waiting for the
// answer, which goes to pf.done. A resend uses the same packet identifier
// with DUP set [MQTT-4.4.0-1] (the id was reserved when the Client was
// made), or is the PUBREL of a flow that had reached it. ctx bounds the
// wait for a Receive Maximum slot.
//
// An error means pf.done will not be called: the packet cannot be sent
// (errors.As *encodeError: permanent) or the connection is ending.
func (c *Client) startFlow(ctx context.Context, pf *pubFlow) error {
	if !pf.pubrel {
		if err := c.checkPublish(pf.p); err != nil {
			return &encodeError{err}
		}
	}
	select {
	case c.quota <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closedErr()
	}
	f := &flow{kind: packet.PUBLISH, qos: pf.p.QoS, pubrel: pf.pubrel, done: pf.done, onPubrec: pf.onPubrec}
	id, err := c.register(f, pf.id)
	if err != nil {
		<-c.quota
		return err
	}
	if pf.id == 0 && pf.onID != nil {
		pf.onID(id)
	}
	var pk packet.Packet
	if pf.pubrel {
		pk = &packet.Pubrel{PacketID: id}
	} else {
		pp := *pf.p
		pp.PacketID = id
		// [MQTT-3.3.1-1] DUP only on a re-delivery.
		pp.Dup = pf.id != 0
		pk = &pp
	}
	if err := c.sendFlow(ctx, id, pk); err != nil {
		var ee *encodeError
		if errors.As(err, &ee) {
			return err
		}
		// The connection ended: shutdown failed f, calling pf.done.
	}
	return nil
}

// checkPublish refuses, before anything is sent, what the protocol or the
// server's CONNACK forbids.
func (c *Client) checkPublish(p *packet.Publish) error {
	if p.QoS > 2 {
		return fmt.Errorf("client: publish: QoS %d: %w", p.QoS, packet.MalformedPacket)
	}
	if !(p.Topic == "" && c.version == packet.V5 && p.Properties.TopicAlias != nil) {
		if err := topic.ValidateName(p.Topic); err != nil {
			return fmt.Errorf("client: publish: %w", err)
		}
	}
	if a := p.Properties.TopicAlias; a != nil && c.version == packet.V5 {
		// [MQTT-3.3.2-9] at most the server's Topic Alias Maximum; and
		// not mixed with the aliases the writer assigns, which would
		// reuse the caller's numbers for other topics.
		if c.w.aliases != nil {
			return errors.New("client: publish: set Options.NoTopicAliases to manage topic aliases yourself")
		}
		if *a == 0 || *a > c.serverAliasMax {
			return fmt.Errorf("client: publish: topic alias %d, server maximum %d: %w", *a, c.serverAliasMax, packet.TopicAliasInvalid)
		}
	}
	if p.QoS > c.maxQoS {
		// [MQTT-3.2.2-11]
		return fmt.Errorf("client: publish: QoS %d exceeds the server's maximum QoS %d: %w",
			p.QoS, c.maxQoS, packet.QoSNotSupported)
	}
	if p.Retain && !c.retainAvailable {
		// [MQTT-3.2.2-14]
		return fmt.Errorf("client: publish: %w", packet.RetainNotSupported)
	}
	if c.maxPacketSize != 0 {
		// [MQTT-3.2.2-15] never send more than the server's Maximum Packet Size.
		if n := p.Size(c.version); n > 0 && uint64(n) > uint64(c.maxPacketSize) {
			return fmt.Errorf("client: publish: packet of %d bytes exceeds the server's maximum packet size %d: %w",
				n, c.maxPacketSize, packet.PacketTooLarge)
		}
	}
	return nil
}
