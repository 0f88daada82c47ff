package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/ternmq/tern/packet"
)

// sessionFlow is a Session's QoS 1/2 publish as one connection carries it.
type sessionFlow struct {
	p      *packet.Publish
	id     uint16 // 0: new, the Client assigns one; else a resend under this id
	pubrel bool   // the flow had reached PUBREL: resend the PUBREL

	onID     func(id uint16) // told the new id before the PUBLISH is written
	onPubrec func()          // told before PUBREL is sent
	done     func(result)    // the answer, or the connection's end (pk nil)
}

// startFlow sends a Session's publish and returns without waiting for the
// answer, which goes to sf.done. A resend uses the same packet identifier
// with DUP set [MQTT-4.4.0-1] (the id was reserved when the Client was
// made), or is the PUBREL of a flow that had reached it. ctx bounds the
// wait for a Receive Maximum slot.
//
// An error means sf.done will not be called: the packet could not be sent
// (then errors.As *encodeError or a publish check failed: permanent) or
// the connection is ending.
func (c *Client) startFlow(ctx context.Context, sf *sessionFlow) error {
	if !sf.pubrel {
		if err := c.checkPublish(sf.p); err != nil {
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
	f := &flow{kind: packet.PUBLISH, qos: sf.p.QoS, pubrel: sf.pubrel, cb: sf.done, onPubrec: sf.onPubrec}
	id := sf.id
	if id == 0 {
		var err error
		if id, err = c.register(f); err != nil {
			<-c.quota
			return err
		}
		sf.onID(id)
	} else if err := c.registerAt(id, f); err != nil {
		<-c.quota
		return err
	}
	var pk packet.Packet
	if sf.pubrel {
		pk = &packet.Pubrel{PacketID: id}
	} else {
		pp := *sf.p
		pp.PacketID = id
		pp.Dup = sf.id != 0
		pk = &pp
	}
	if err := c.sendFlow(id, pk); err != nil {
		var ee *encodeError
		if errors.As(err, &ee) {
			return err
		}
		// The connection ended: shutdown failed f, calling sf.done.
		return nil
	}
	return nil
}

// registerAt puts f under id, which must be free or reserved.
func (c *Client) registerAt(id uint16, f *flow) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ending || c.disconnecting {
		return c.closedErr()
	}
	if old := c.pending[id]; old != nil && old.kind != 0 {
		return fmt.Errorf("client: packet identifier %d in use", id)
	}
	c.pending[id] = f
	return nil
}
