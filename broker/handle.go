package broker

import (
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/topic"
)

// handle dispatches one packet from a connected client. A non-nil error
// ends the connection.
func (c *conn) handle(pk packet.Packet) error {
	switch p := pk.(type) {
	case *packet.Publish:
		return c.onPublish(p)
	case *packet.Puback:
		c.sess.ack(p.PacketID, 1)
	case *packet.Pubrec:
		if c.version == packet.V5 && p.ReasonCode.IsFailure() {
			// [MQTT-4.3.3-4] the receiver refused it: the flow ends here.
			c.sess.ack(p.PacketID, 2)
			return nil
		}
		code := packet.Success
		t, known := c.sess.received(p.PacketID)
		if !known {
			code = packet.PacketIDNotFound
		}
		c.after(t)
		// [MQTT-4.3.3-3] PUBREC is answered with PUBREL, also for an id
		// we no longer know, so that the client can finish its flow.
		c.sendAck(packet.PUBREL, p.PacketID, code)
	case *packet.Pubrel:
		c.onPubrel(p.PacketID)
	case *packet.Pubcomp:
		c.sess.ack(p.PacketID, 2)
	case *packet.Subscribe:
		return c.onSubscribe(p)
	case *packet.Unsubscribe:
		c.onUnsubscribe(p)
	case *packet.Pingreq:
		c.sendAck(packet.PINGRESP, 0, 0) // [MQTT-3.12.4-1]
	case *packet.Disconnect:
		return c.onDisconnect(p)
	case *packet.Auth:
		return c.onAuth(p)
	case *packet.Connect:
		// [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
		return fmt.Errorf("second CONNECT: %w", packet.ProtocolError)
	default:
		return fmt.Errorf("unexpected %s from client: %w", pk.Type(), packet.ProtocolError)
	}
	return nil
}

// onDisconnect ends the connection at the client's request.
func (c *conn) onDisconnect(p *packet.Disconnect) error {
	se := p.Properties.SessionExpiry
	if se != nil && c.version == packet.V5 && (c.sessionExpiry == nil || *c.sessionExpiry == 0) && *se != 0 {
		// [MQTT-3.14.2-2] a session that expires at disconnect cannot be
		// made persistent at DISCONNECT; the will still goes out.
		return fmt.Errorf("DISCONNECT sets session expiry %d after 0: %w", *se, packet.ProtocolError)
	}
	c.disconnected = true
	// [MQTT-3.14.4-3] DISCONNECT discards the will, unless a v5 client
	// asks for it with reason 0x04.
	if p.ReasonCode != packet.DisconnectWithWill || c.version != packet.V5 {
		c.will = nil
	}
	if se != nil && c.version == packet.V5 {
		s := c.sess
		s.mu.Lock()
		s.expiry = c.b.capSessionExpiry(*se)
		s.setPersistent(s.expiry > 0) // as capped, as at CONNECT
		s.mu.Unlock()
	}
	return nil
}

// sendAck queues a PUBACK, PUBREC, PUBREL, PUBCOMP or PINGRESP without
// allocating: these are fixed-shape and sent for every QoS 1/2 message.
func (c *conn) sendAck(t packet.Type, id uint16, code packet.ReasonCode) {
	var b [5]byte
	b[0] = byte(t) << 4
	if t == packet.PUBREL {
		b[0] |= 0x02 // [MQTT-3.6.1-1] reserved flags 0010
	}
	n := 4
	switch {
	case t == packet.PINGRESP:
		n = 2
	case c.version == packet.V5 && code != packet.Success:
		b[1], b[4], n = 3, byte(code), 5
	default:
		b[1] = 2
	}
	if n > 2 {
		b[2], b[3] = byte(id>>8), byte(id)
	}
	c.ob.mu.Lock()
	defer c.ob.mu.Unlock()
	if c.ob.closed || c.ob.closing {
		return
	}
	buf := c.ob.reserve()
	*buf = append(*buf, b[:n]...)
	c.afterAppend()
}

// onPublish handles a PUBLISH from the client.
func (c *conn) onPublish(p *packet.Publish) error {
	c.b.stats.messagesIn[min(p.QoS, 2)].Add(1)
	if c.b.observer != nil {
		c.router.readAt = c.router.lastRead
	}
	if c.version == packet.V5 {
		if err := c.checkV5Publish(p); err != nil {
			return err
		}
	}
	// [MQTT-3.3.2-2] the topic name must not contain wildcards.
	if err := topic.ValidateName(p.Topic); err != nil {
		return fmt.Errorf("publish topic %q: %v: %w", p.Topic, err, packet.TopicNameInvalid)
	}
	if p.Retain && c.announced.DisableRetain {
		if c.version == packet.V5 {
			// [MQTT-3.2.2-14] RETAIN after CONNACK said Retain Available 0.
			return fmt.Errorf("retained publish: %w", packet.RetainNotSupported)
		}
		p.Retain = false // 3.1.1 has no way to say no
	}
	s := c.sess
	var resend uint64 // the token of a QoS 2 retransmission to forward again
	if p.QoS == 2 {
		s.mu.Lock()
		token, seen := s.inQoS2[p.PacketID]
		n := len(s.inQoS2)
		s.mu.Unlock()
		if seen && (token == 0 || !c.b.streams) {
			// [MQTT-4.3.3-2] exactly once: a retransmission is acknowledged
			// again but not delivered again. It holds a slot already, so
			// it is never counted against Receive Maximum [MQTT-4.4.0-1].
			c.sendAck(packet.PUBREC, p.PacketID, packet.Success)
			return nil
		}
		if seen {
			// Forwarded through the cluster before, by a node that may
			// have died before it was kept: again, under the same token,
			// which the stream recognises [MQTT-4.3.3-2].
			resend = token
		} else if c.version == packet.V5 && n >= c.announced.ReceiveMaximum {
			// [MQTT-3.3.4-8] more unacknowledged QoS 2 than we allowed.
			return fmt.Errorf("%d QoS 2 messages unreleased: %w", n, packet.ReceiveMaximumExceeded)
		}
	}
	code := packet.Success
	var m *Message
	if p.QoS > 0 && c.b.Health() != nil {
		// Nothing is acknowledged that might not be stored: a v5 client
		// is told, a 3.1.1 client (which cannot be) is disconnected, and
		// so is one retransmitting (its id stays received).
		if c.version != packet.V5 || resend != 0 {
			return c.b.Health()
		}
		code = packet.UnspecifiedError
	} else if err := c.b.topicLimits().Check(p.Topic); err != nil {
		// Within the protocol but beyond the configured bounds: refused
		// like an unauthorized publish, not a reason to disconnect.
		code = packet.TopicNameInvalid
		c.b.log.Debug("publish refused", "client", c.clientID, "topic", p.Topic, "err", err)
	} else if c.b.opts().Authorizer.Authorize(c.client, auth.Publish, p.Topic) {
		m = &Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain}
		if c.version == packet.V5 {
			setMessageProperties(m, &p.Properties, time.Now())
		}
		if err := c.runPublishHooks(m); err != nil {
			code, m = packet.UnspecifiedError, nil
			c.b.log.Debug("publish rejected by hook", "client", c.clientID, "topic", p.Topic, "err", err)
		}
	} else {
		// 3.1.1 offers no way to refuse a PUBLISH: it is acknowledged and
		// dropped [MQTT-3.3.5-2]; v5 says why in the acknowledgement.
		code = packet.NotAuthorized
		c.b.log.Debug("publish not authorized", "client", c.clientID, "topic", p.Topic)
	}
	if resend != 0 {
		// Accepted when first received: acknowledged as then.
		var t store.Ticket
		if m != nil && c.b.streamed(m) {
			t = c.b.cluster.Reforward(m, c.clientID, resend)
		}
		c.after(t)
		c.sendAck(packet.PUBREC, p.PacketID, packet.Success)
		return nil
	}
	if m != nil {
		// Authorization may wait on the network: never inside Atomic,
		// which holds up every other commit.
		c.router.match(c.b, m, c.clientID)
	}
	var ticket store.Ticket
	var token uint64
	if m != nil && (p.QoS == 2 || p.QoS == 1 && len(c.router.targets) > 1) {
		// QoS 2: the message and the id that marks it received commit
		// together: after a crash a retransmission is either recognised
		// or delivered, never both and never neither [MQTT-4.3.3-2]
		// (through a cluster's stream, m follows the id: Cluster.Forward).
		// Several sessions: their copies commit together, so the store
		// writes the message once for them all.
		t, rc, tk := store.Ticket(0), code, uint64(0) // locals, so only this path allocates
		c.b.store.Atomic(func() { t, rc, tk = c.publish(m, p.QoS, p.PacketID, rc) })
		ticket, code, token = t, rc, tk
	} else {
		ticket, code, token = c.publish(m, p.QoS, p.PacketID, code)
	}
	ticket = max(ticket, c.router.forward(m, token))
	// Acknowledged only once durable: the writer waits for the ticket.
	c.after(ticket)
	switch p.QoS {
	case 1:
		c.sendAck(packet.PUBACK, p.PacketID, code) // [MQTT-4.3.2-2]
	case 2:
		c.sendAck(packet.PUBREC, p.PacketID, code) // [MQTT-4.3.3-2]
	}
	return nil
}

// publish delivers m (nil for none) to the sessions c.router matched and,
// for QoS 2, records the packet id as received. It returns the ticket of
// the store writes, the reason code for the acknowledgement and the
// token for Cluster.Forward.
func (c *conn) publish(m *Message, qos byte, id uint16, code packet.ReasonCode) (store.Ticket, packet.ReasonCode, uint64) {
	var t store.Ticket
	if m != nil {
		var refused bool
		if t, refused = c.router.deliver(m); refused && c.version == packet.V5 {
			code = packet.QuotaExceeded
		}
	}
	// A v5 failure code ends a QoS 2 flow: no PUBREL follows and the id is
	// free again [MQTT-4.3.3-4].
	var token uint64
	if qos == 2 && (!code.IsFailure() || c.version != packet.V5) {
		s := c.sess
		s.mu.Lock()
		if m != nil && s.persistent && c.b.streamed(m) {
			// The client may retransmit to another node after this one
			// died: the token lets it forward m again safely.
			token = rand.Uint64() | 1
		}
		in := store.Inbound{PacketID: id, Token: token}
		s.putInQoS2(in)
		t = max(t, s.persist(func(st store.Store) store.Ticket { return st.PutInboundQoS2(s.id, in) }))
		s.mu.Unlock()
	}
	return t, code, token
}

// checkV5Publish applies the v5 rules on PUBLISH properties that end the
// connection.
func (c *conn) checkV5Publish(p *packet.Publish) error {
	if len(p.Properties.SubscriptionIDs) > 0 {
		// [MQTT-3.3.4-6] only the server sends Subscription Identifiers.
		return fmt.Errorf("PUBLISH from client with subscription identifier: %w", packet.ProtocolError)
	}
	if err := c.resolveAlias(p); err != nil {
		return fmt.Errorf("topic alias %d: %w", *p.Properties.TopicAlias, err)
	}
	if err := checkResponseTopic(p.Properties.ResponseTopic); err != nil {
		return err
	}
	if pf := p.Properties.PayloadFormat; pf != nil && *pf == 1 && !utf8.Valid(p.Payload) {
		// [MQTT-3.3.2.3.2] payload said to be UTF-8 is not.
		return fmt.Errorf("payload format indicator 1 with invalid UTF-8: %w", packet.PayloadFormatInvalid)
	}
	return nil
}

// checkResponseTopic refuses a v5 Response Topic (of a PUBLISH or a will)
// that is not a topic name: [MQTT-3.3.2-14] no wildcards.
func checkResponseTopic(rt string) error {
	if rt == "" {
		return nil
	}
	if err := topic.ValidateName(rt); err != nil {
		return fmt.Errorf("response topic %q: %v: %w", rt, err, packet.ProtocolError)
	}
	return nil
}

func (c *conn) runPublishHooks(m *Message) error {
	for _, h := range c.b.hooks.publish {
		if err := h.OnPublish(c.client, m); err != nil {
			return err
		}
	}
	return nil
}

// setMessageProperties copies the application properties a PUBLISH or
// will carries into m; the Message Expiry Interval becomes a deadline.
func setMessageProperties(m *Message, p *packet.Properties, now time.Time) {
	m.Properties = packet.Properties{
		PayloadFormat:   p.PayloadFormat,
		ContentType:     p.ContentType,
		ResponseTopic:   p.ResponseTopic,
		CorrelationData: p.CorrelationData,
		User:            p.User,
	}
	if p.MessageExpiry != nil {
		m.Expiry = now.Add(time.Duration(*p.MessageExpiry) * time.Second)
	}
}

// onPubrel releases an inbound QoS 2 packet id and completes the flow
// [MQTT-4.3.3-2].
func (c *conn) onPubrel(id uint16) {
	s := c.sess
	s.mu.Lock()
	_, known := s.inQoS2[id]
	var t store.Ticket
	if known {
		delete(s.inQoS2, id)
		t = s.persist(func(st store.Store) store.Ticket { return st.DeleteInboundQoS2(s.id, id) })
	}
	s.mu.Unlock()
	// Once PUBCOMP is out the client may reuse id for a new message,
	// which a restart must not take for a retransmission of this one.
	c.after(t)
	code := packet.Success
	if !known {
		code = packet.PacketIDNotFound
	}
	c.sendAck(packet.PUBCOMP, id, code)
}

// onSubscribe adds subscriptions, answers SUBACK with one code per filter
// in order [MQTT-3.8.4-1] [MQTT-3.9.3-1], then sends matching retained
// messages [MQTT-3.3.1-6].
func (c *conn) onSubscribe(p *packet.Subscribe) error {
	s := c.sess
	for _, sub := range p.Subscriptions {
		if _, _, shared := topic.ParseShared(sub.Filter); shared && sub.NoLocal {
			// [MQTT-3.8.3-4] No Local on a shared subscription.
			return fmt.Errorf("no local on shared subscription %q: %w", sub.Filter, packet.ProtocolError)
		}
	}
	codes := make([]packet.ReasonCode, len(p.Subscriptions))
	var wantRetained []retainReq
	var durable store.Ticket
	maxFilters := limit(c.b.opts().MaxFiltersPerSubscribe)
	for i, sub := range p.Subscriptions {
		if maxFilters > 0 && i >= maxFilters {
			codes[i] = c.failure(packet.QuotaExceeded)
			continue
		}
		err := topic.ValidateFilter(sub.Filter)
		if err == nil {
			err = c.b.topicLimits().Check(sub.Filter)
		}
		if err != nil {
			codes[i] = c.failure(packet.TopicFilterInvalid)
			c.b.log.Debug("subscribe refused", "client", c.clientID, "filter", sub.Filter, "err", err)
			continue
		}
		if code := unsupported(c.announced, sub.Filter, p.Properties.SubscriptionIDs); code != 0 {
			codes[i] = c.failure(code)
			continue
		}
		if !c.b.opts().Authorizer.Authorize(c.client, auth.Subscribe, sub.Filter) {
			codes[i] = c.failure(packet.NotAuthorized)
			continue
		}
		rec := store.Subscription{Subscription: sub}
		if ids := p.Properties.SubscriptionIDs; len(ids) > 0 {
			rec.SubscriptionID = ids[0]
		}
		s.mu.Lock()
		_, existed := s.subs.get(sub.Filter)
		if max := c.b.opts().MaxSubscriptions; !existed && max > 0 && s.subs.len() >= max {
			s.mu.Unlock()
			codes[i] = c.failure(packet.QuotaExceeded)
			c.b.log.Debug("subscribe refused: subscription limit", "client", c.clientID, "filter", sub.Filter)
			continue
		}
		s.subs.put(rec)
		durable = max(durable, s.persist(func(st store.Store) store.Ticket { return st.PutSubscription(s.id, rec) }))
		s.mu.Unlock()
		// [MQTT-3.8.4-3] a repeated filter replaces the subscription.
		c.b.subscribe(sub.Filter, s, optsOf(rec))
		codes[i] = packet.ReasonCode(sub.QoS)
		for _, h := range c.b.hooks.subscribe {
			h.OnSubscribe(c.client, sub)
		}
		if _, _, shared := topic.ParseShared(sub.Filter); shared {
			continue // retained messages are not sent to shared subscriptions
		}
		if sub.RetainHandling == 0 || (sub.RetainHandling == 1 && !existed) {
			var ids []uint32
			if rec.SubscriptionID != 0 {
				ids = []uint32{rec.SubscriptionID}
			}
			wantRetained = append(wantRetained, retainReq{sub.Filter, sub.QoS, ids})
		}
	}
	c.after(durable) // what SUBACK grants survives a restart
	c.sendPacket(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	if c.announced.DisableRetain {
		return nil
	}
	// The matching retained messages are taken as pointers under the
	// tree's read lock, authorized outside it (the Authorizer may wait on
	// the network), and handed over as the connection takes them
	// (backlog.go): beyond the queue, none is dropped. A walk longer than
	// a few holds of the lock finishes in a goroutine, for this
	// connection to go on reading (acknowledgements) meanwhile.
	now := time.Now()
	for _, r := range wantRetained {
		var msgs []*Message
		w := c.b.retained.walk(r.filter, now, func(m *Message) { msgs = append(msgs, m) })
		if c.b.retained.resume(w, syncWalkChunks) {
			s.addRetainedFor(c.client, r, msgs)
			continue
		}
		cl := c.client
		go func() {
			c.b.retained.resume(w, -1)
			s.addRetainedFor(cl, r, msgs)
		}()
	}
	return nil
}

// unsupported returns the SUBACK code for a subscription using a feature
// switched off in o, or 0.
func unsupported(o *Options, filter string, subIDs []uint32) packet.ReasonCode {
	_, inner, shared := topic.ParseShared(filter)
	if !shared {
		inner = filter
	}
	switch {
	case shared && o.DisableShared:
		return packet.SharedSubNotSupported
	case o.DisableWildcards && topic.HasWildcard(inner):
		return packet.WildcardSubsNotSupported
	case o.DisableSubIDs && len(subIDs) > 0:
		return packet.SubIDsNotSupported
	}
	return 0
}

// failure returns code for v5 clients and the 3.1.1 SUBACK failure code
// otherwise.
func (c *conn) failure(code packet.ReasonCode) packet.ReasonCode {
	if c.version == packet.V5 {
		return code
	}
	return packet.SubackFailure
}

// onUnsubscribe removes subscriptions and answers UNSUBACK [MQTT-3.10.4-4].
func (c *conn) onUnsubscribe(p *packet.Unsubscribe) {
	s := c.sess
	codes := make([]packet.ReasonCode, len(p.Filters))
	var durable store.Ticket
	for i, f := range p.Filters {
		s.mu.Lock()
		ok := s.subs.del(f)
		s.dropRetained(f) // what it still had to receive is no longer owed
		if ok {
			durable = max(durable, s.persist(func(st store.Store) store.Ticket { return st.DeleteSubscription(s.id, f) }))
		}
		s.mu.Unlock()
		if ok {
			c.b.unsubscribe(f, s)
			for _, h := range c.b.hooks.unsubscribe {
				h.OnUnsubscribe(c.client, f)
			}
		} else {
			codes[i] = packet.NoSubscriptionExisted
		}
	}
	c.after(durable)
	c.sendPacket(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes})
}
