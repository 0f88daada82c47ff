package broker

import (
	"time"

	"github.com/ternmq/tern/auth"
)

// A subscription may match far more retained messages than a session's
// queue holds (a '#' subscriber to a million of them). Rather than drop
// what does not fit, the matching messages are taken once, as pointers
// (8 bytes each), and handed over as the connection can take them: while
// the in-flight window has room and the write buffer is not backed up.
// The writer and every acknowledgement resume the hand-over (session.fill).
// What is left waits while a persistent session is offline and goes with
// the session when it ends; a broker restart forgets it.

// retainedBacklog is what a session's subscriptions still have to receive
// of the retained messages they matched, in order of subscription.
type retainedBacklog struct {
	pages []retainedPage
}

// retainedPage is the retained messages one subscription matched and has
// not yet received, already authorized for the session's client.
type retainedPage struct {
	filter string
	qos    byte
	subIDs []uint32
	msgs   []*Message
}

// retainReq is a subscription that is to receive the retained messages
// it matches.
type retainReq struct {
	filter string
	qos    byte
	subIDs []uint32
}

// syncWalkChunks is how many holds of the retained tree's lock a
// SUBSCRIBE walks before it leaves the rest of the walk to a goroutine.
const syncWalkChunks = 4

// addRetainedFor keeps of msgs, the retained messages req matched, those
// cl may read, for the session to receive, and starts handing them over.
// s.mu must not be held.
func (s *session) addRetainedFor(cl *auth.Client, req retainReq, msgs []*Message) {
	authz := s.b.opts().Authorizer
	kept := msgs[:0]
	for _, m := range msgs {
		if authz.Authorize(cl, auth.Read, m.Topic) {
			kept = append(kept, m)
		}
	}
	clear(msgs[len(kept):])
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs.get(req.filter); s.gone || !ok {
		return // ended or unsubscribed while the walk ran
	}
	s.addRetained(req.filter, req.qos, req.subIDs, kept)
	s.fill()
}

// addRetained queues msgs for the subscription to filter; a repeated
// subscription replaces what its earlier one still had to receive, so
// that nothing arrives twice. s.mu must be held.
func (s *session) addRetained(filter string, qos byte, subIDs []uint32, msgs []*Message) {
	s.dropRetained(filter)
	if len(msgs) == 0 {
		return
	}
	if s.backlog == nil {
		s.backlog = &retainedBacklog{}
	}
	s.backlog.pages = append(s.backlog.pages, retainedPage{filter, qos, subIDs, msgs})
}

// dropRetained forgets what the subscription to filter still had to
// receive (it was unsubscribed or replaced). s.mu must be held.
func (s *session) dropRetained(filter string) {
	if s.backlog == nil {
		return
	}
	pages := s.backlog.pages[:0]
	for _, p := range s.backlog.pages {
		if p.filter != filter {
			pages = append(pages, p)
		}
	}
	clear(s.backlog.pages[len(pages):])
	s.backlog.pages = pages
	if len(pages) == 0 {
		s.backlog = nil
	}
}

// retainedOwed returns how many retained messages the session still has
// to receive.
func (s *session) retainedOwed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backlog == nil {
		return 0
	}
	n := 0
	for _, p := range s.backlog.pages {
		n += len(p.msgs)
	}
	return n
}

// pumpRetained sends what the backlog holds while the connection can take
// it: QoS 1/2 within the in-flight window [MQTT-3.3.4-9], and only while
// the write buffer is less than half full, which leaves the other half to
// live messages and keeps QoS 0 from being dropped as slow. A message
// whose topic has since been cleared, has expired or retains a newer
// message is skipped: the subscription got the newer one as it was
// published. Queued and resent messages go first (fill calls this once
// they are out). enc encodes them. s.mu must be held.
func (s *session) pumpRetained(c *conn, enc *encoder) {
	if s.backlog == nil || len(s.queue) > 0 || len(s.resend) > 0 {
		return
	}
	half := s.b.opts().MaxWriteBuffer / 2
	now := time.Now()
	bl := s.backlog
	for len(bl.pages) > 0 {
		p := &bl.pages[0]
		for len(p.msgs) > 0 {
			m := p.msgs[0]
			if s.b.retained.get(m.Topic, now) != m {
				p.msgs[0], p.msgs = nil, p.msgs[1:]
				continue
			}
			qos := min(m.QoS, p.qos)
			if qos > 0 && len(s.inflight) >= s.window {
				return
			}
			enc.reset()
			b := enc.bytes(c.version, m, qos > 0, p.subIDs)
			if pend := c.pending(); pend >= half || (pend > 0 && pend+len(b) > 2*half) {
				return // the writer comes back once it has written
			}
			p.msgs[0], p.msgs = nil, p.msgs[1:]
			// [MQTT-3.3.1-8] retained messages keep RETAIN set.
			if qos == 0 {
				if c.sendPublish(m, b, 0, true, false, 0) {
					s.b.observe(enc, 0)
				}
				continue
			}
			s.seq++
			d := delivery{qos: qos, retain: true, subIDs: p.subIDs}
			s.sendNew(c, d.outbound(s.seq, m), enc)
		}
		bl.pages[0] = retainedPage{}
		bl.pages = bl.pages[1:]
	}
	s.backlog = nil
}
