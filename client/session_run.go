package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ternmq/tern/packet"
)

// stableConnection is how long a connection must last for the backoff to
// start again from Backoff.Min: a server that accepts and at once drops
// the client (or two Sessions with one client id taking the session from
// each other) sees the waits grow as for failed attempts.
const stableConnection = 10 * time.Second

// run is the connection loop: connect, serve the connection until it is
// lost, wait, and again, until Disconnect, Close or a permanent refusal.
func (s *Session) run() {
	defer func() {
		s.failWaiting()
		if s.sw != nil {
			s.sw.close()
			s.opts.Store.Close()
		}
		close(s.done)
	}()
	first := true
	attempt := 0
	for {
		cleanBefore := s.cleanLast
		c, err := s.connect(first)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			end := permanent(err, s.opts.BeforeConnect != nil)
			s.log.Warn("mqtt connection attempt failed", "server", s.serverName(), "error", err, "final", end)
			if end {
				s.mu.Lock()
				s.err = err
				s.closing, s.stopping = true, true
				s.mu.Unlock()
			}
			if f := s.opts.OnConnectError; f != nil {
				s.callback(func() { f(err) })
			}
			if end {
				return
			}
			if s.nextServer() {
				continue // the round of servers goes on
			}
			if !sleepCtx(s.ctx, s.opts.Backoff.Delay(attempt)) {
				return
			}
			attempt++
			continue
		}
		first = false
		since := time.Now()
		s.log.Info("mqtt connected", "server", s.serverName(), "resumed", c.resumed())
		lost := s.serve(c, cleanBefore)
		if lost == nil {
			return
		}
		s.log.Warn("mqtt connection lost", "server", s.serverName(), "error", lost)
		if f := s.opts.OnConnectionLost; f != nil {
			s.callback(func() { f(lost) })
		}
		s.nextServer()
		if time.Since(since) >= stableConnection {
			attempt = 0
		}
		if !sleepCtx(s.ctx, s.opts.Backoff.Delay(attempt)) {
			return
		}
		attempt++
	}
}

// connect makes one connection attempt.
func (s *Session) connect(first bool) (*Client, error) {
	o := s.opts.Options
	s.mu.Lock()
	o.ClientID = s.clientID
	o.CleanStart = first && o.CleanStart
	o.router = &s.router
	if o.Version == packet.V31 && s.cleanLast {
		// 3.1 has no Session Present; a clean session ended with its
		// connection, so nothing received then can come again.
		clear(s.received)
	}
	o.received = s.received
	o.after = s.prevDone
	for _, m := range s.queue {
		if m.id != 0 {
			o.reserved = append(o.reserved, m.id)
		}
	}
	if n := len(s.opts.Servers); n > 0 {
		o.URL = s.opts.Servers[s.server%n]
	}
	s.mu.Unlock()
	if f := s.opts.BeforeConnect; f != nil {
		id, clean := o.ClientID, o.CleanStart
		if err := f(s.ctx, &o); err != nil {
			return nil, fmt.Errorf("client: BeforeConnect: %w", err)
		}
		o.ClientID, o.CleanStart = id, clean
		if err := o.normalize(); err != nil {
			return nil, fmt.Errorf("client: BeforeConnect: %w", err)
		}
	}
	c, err := Connect(s.ctx, o)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cleanLast = o.CleanStart
	s.mu.Unlock()
	if s.clientID == "" {
		// [MQTT-3.2.2-16] the server assigned one; resume under it.
		s.clientID = c.Connack().Properties.AssignedClientID
	}
	return c, nil
}

// serverName names the current server, for the log.
func (s *Session) serverName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.opts.Servers); n > 0 {
		return s.opts.Servers[s.server%n]
	}
	if s.opts.URL != "" {
		return s.opts.URL
	}
	return s.opts.Address
}

// nextServer moves to the next of several servers and reports whether
// the round goes on (false: the round is over, or there is one server).
func (s *Session) nextServer() bool {
	n := len(s.opts.Servers)
	if n < 2 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.server = (s.server + 1) % n
	return s.server != 0
}

// permanent reports whether a refusal will not change by retrying. With
// a BeforeConnect hook, which may bring new credentials, refused
// credentials are not.
func permanent(err error, hook bool) bool {
	var ce *ConnectError
	if !errors.As(err, &ce) {
		return false
	}
	if hook && (errors.Is(err, packet.BadUsernameOrPassword) || errors.Is(err, packet.NotAuthorized)) {
		return false
	}
	for _, code := range []packet.ReasonCode{packet.UnsupportedProtocolVersion, packet.ClientIDNotValid,
		packet.BadUsernameOrPassword, packet.NotAuthorized, packet.Banned, packet.BadAuthenticationMethod} {
		if errors.Is(err, code) {
			return true
		}
	}
	return false
}

// serve runs the Session over c until c ends; it returns why, or nil when
// the Session is stopping.
func (s *Session) serve(c *Client, cleanBefore bool) error {
	resumed := c.resumed()
	if c.version == packet.V31 && cleanBefore {
		resumed = false // see connect
	}
	if !resumed {
		s.restart()
		if err := s.resubscribe(c); err != nil {
			c.Close()
		}
	}
	// The queue goes out from here on, so that OnConnect may publish;
	// what it publishes is queued after what was waiting.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		s.sendLoop(c)
	}()
	if !c.ended() {
		s.mu.Lock()
		stopping := s.stopping
		if !stopping {
			s.client = c
			close(s.up)
		}
		s.mu.Unlock()
		if stopping {
			// Disconnect or Close came while connecting, and found no
			// connection to end.
			s.endConn(c)
		} else if f := s.opts.OnConnect; f != nil {
			s.callback(func() { f(c.Connack()) })
		}
	}
	// Not c.Done: a handler still running may be waiting for the next
	// connection (a Publish through the Session). The next connection
	// delivers once c's handlers are done.
	<-c.readerDone
	<-sent
	s.mu.Lock()
	if s.client == c {
		s.client = nil
		s.up = make(chan struct{})
	}
	stopping := s.stopping
	s.received = c.receivedAfter()
	s.prevDone = c.Done()
	s.mu.Unlock()
	if stopping {
		return nil
	}
	err := c.Err()
	if err == nil {
		err = ErrClosed
	}
	return err
}

// restart adapts the queue to a session the server does not have: QoS 2
// messages whose PUBREC came were received, and the others are sent as new
// messages.
func (s *Session) restart() {
	s.mu.Lock()
	var done []*outMsg
	kept := s.queue[:0]
	for _, m := range s.queue {
		switch {
		case m.pubrel:
			done = append(done, m)
		case m.id != 0:
			m.id = 0
			s.store(m, nil)
			kept = append(kept, m)
		default:
			kept = append(kept, m)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	s.checkEmpty()
	s.mu.Unlock()
	for _, m := range done {
		s.complete(m, nil)
	}
}

// resubscribe makes the recorded subscriptions again.
func (s *Session) resubscribe(c *Client) error {
	s.mu.Lock()
	var subs []*packet.Subscribe
	for _, r := range s.subs {
		if r.active {
			subs = append(subs, &packet.Subscribe{Properties: r.props, Subscriptions: slices.Clone(r.subs)})
		}
	}
	s.mu.Unlock()
	for _, sp := range subs {
		// A filter refused now (its permission withdrawn) is not a reason
		// to drop the connection.
		var se *SubscribeError
		if _, err := c.SubscribePacket(s.ctx, sp); err != nil && !errors.As(err, &se) {
			return err
		}
	}
	return nil
}

// sendLoop sends the queue over c, in order, until c ends.
func (s *Session) sendLoop(c *Client) {
	var cursor uint64 // messages with seq < cursor were sent on c
	for {
		m := s.next(c, cursor)
		if m == nil {
			return
		}
		cursor = m.seq + 1
		if m.p.QoS == 0 {
			err := c.Publish(s.ctx, m.p)
			if err != nil && c.ended() {
				continue // sent again on the next connection
			}
			s.finish(m, err)
			continue
		}
		s.mu.Lock()
		sf := &pubFlow{p: m.p, id: m.id, pubrel: m.pubrel}
		s.mu.Unlock()
		sf.onID = func(id uint16) {
			s.mu.Lock()
			m.id = id
			durable := make(chan struct{})
			stored := s.store(m, func(error) { close(durable) })
			s.mu.Unlock()
			if stored && m.p.QoS == 2 {
				// Sent under an id the Store does not have, and lost with
				// the process, the message would be sent again as a new
				// one: twice. (QoS 1 may be.)
				<-durable
			}
		}
		sf.onPubrec = func(send func()) {
			s.mu.Lock()
			m.pubrel = true
			// The PUBREL waits for the Store, for the same reason, but the
			// reader does not: the store writer sends it.
			stored := s.store(m, func(error) { send() })
			s.mu.Unlock()
			if !stored {
				send()
			}
		}
		sf.done = func(r result) {
			if r.pk == nil {
				return // the connection ended: sent again on the next
			}
			err := r.err
			var re *ReasonError
			if errors.As(err, &re) && re.Type == packet.PUBCOMP && re.Code == packet.PacketIDNotFound {
				// Our PUBREL was resent after the server had completed
				// the flow and its PUBCOMP was lost with the
				// connection. The message was accepted at PUBREC.
				err = nil
			}
			s.finish(m, err)
		}
		if err := c.startFlow(s.ctx, sf); err != nil {
			var ee *encodeError
			if errors.As(err, &ee) {
				s.finish(m, err)
			}
		}
	}
}

// next waits for the first message with seq >= cursor, or returns nil
// when c ends.
func (s *Session) next(c *Client, cursor uint64) *outMsg {
	for {
		if c.ended() {
			return nil
		}
		s.mu.Lock()
		i, _ := s.find(cursor)
		var m *outMsg
		if i < len(s.queue) {
			m = s.queue[i]
		}
		s.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-s.wake:
		case <-c.closed:
			return nil
		}
	}
}

// find returns where seq is, or would be, in the queue. mu must be held.
func (s *Session) find(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(s.queue, seq, func(m *outMsg, seq uint64) int { return cmp.Compare(m.seq, seq) })
}

// finish ends m's flow with err.
func (s *Session) finish(m *outMsg, err error) {
	s.mu.Lock()
	i, found := s.find(m.seq)
	if found {
		s.queue = slices.Delete(s.queue, i, i+1)
		s.checkEmpty()
	}
	s.mu.Unlock()
	if found {
		s.complete(m, err)
	}
}

// complete tells m's publisher the outcome of a message no longer queued
// and removes it from the Store.
func (s *Session) complete(m *outMsg, err error) {
	s.drop(m)
	if m.done != nil {
		m.done <- err
	}
}

// checkEmpty signals Disconnect when the queue is empty. mu must be held.
func (s *Session) checkEmpty() {
	if len(s.queue) == 0 && s.storing == 0 {
		select {
		case <-s.emptied:
		default:
			close(s.emptied)
		}
	}
}

// store queues the write of m's state to the Store and reports whether
// it did; after, if set, is called once it is durable. mu must be held. A
// failure here leaves the stored copy one step behind, which costs at
// most a duplicate after a restart of the process; the connection goes on.
func (s *Session) store(m *outMsg, after func(error)) bool {
	if s.sw == nil || m.p.QoS == 0 {
		return false
	}
	s.sw.add(storeOp{m: StoredMessage{Seq: m.seq, PacketID: m.id, Pubrel: m.pubrel, Publish: m.p}, after: after})
	return true
}

// drop queues the removal of m from the Store.
func (s *Session) drop(m *outMsg) {
	if s.sw != nil && m.p.QoS > 0 {
		s.sw.add(storeOp{m: StoredMessage{Seq: m.seq}})
	}
}

// failWaiting fails the publishes still waiting, when the Session ends;
// their messages stay in the Store.
func (s *Session) failWaiting() {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.finished = true
	err := s.err
	s.mu.Unlock()
	if err == nil {
		err = ErrClosed
	}
	for _, m := range q {
		if m.done != nil {
			m.done <- err
		}
	}
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
