package broker

import (
	"time"

	"github.com/ternmq/tern/store"
)

// neverExpires is the v5 Session Expiry Interval meaning "never", and what
// a 3.1.1 clean-session-0 session gets.
const neverExpires = 0xFFFFFFFF

// pendingWill is a will waiting for its Will Delay Interval, or for the
// session to end, whichever comes first [MQTT-3.1.3-9].
type pendingWill struct {
	msg   *Message
	from  string
	at    time.Time // when it is due
	timer *time.Timer
}

// expiryState is what an offline session waits for: its end, and a will
// waiting for its delay. Most sessions are online, so it is made only for
// those that go offline.
type expiryState struct {
	expiresAt int64        // Unix ns when the session ends; 0: never
	timer     *time.Timer  // ends the session at expiresAt
	will      *pendingWill // a delayed will
}

// offline returns the session's expiry state, made if needed. s.mu must
// be held.
func (s *session) offline() *expiryState {
	if s.expiryState == nil {
		s.expiryState = new(expiryState)
	}
	return s.expiryState
}

// expiresAt is when the offline session ends (zero: never, or online).
// s.mu must be held.
func (s *session) expiresAt() time.Time {
	if s.expiryState == nil || s.expiryState.expiresAt == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.expiryState.expiresAt)
}

// pendingWill returns the will waiting for its delay, if any. s.mu must
// be held.
func (s *session) pendingWill() *pendingWill {
	if s.expiryState == nil {
		return nil
	}
	return s.expiryState.will
}

// expireAt has the session end at at. s.mu must be held.
func (s *session) expireAt(at time.Time) {
	a := s.offline()
	a.expiresAt = at.UnixNano()
	a.timer = time.AfterFunc(time.Until(at), func() { s.b.expire(s) })
}

// startExpiry arms the timers of a session that just went offline: the
// session ends after its expiry interval, a delayed will goes out after its
// delay or at session end. s.mu must be held.
func (s *session) startExpiry(will *Message, delay time.Duration) {
	expiry := time.Duration(s.expiry) * time.Second
	finite := s.expiry != neverExpires
	if will != nil {
		if finite {
			delay = min(delay, expiry)
		}
		s.armWill(will, time.Now().Add(delay))
	}
	if finite {
		s.expireAt(time.Now().Add(expiry))
	}
	s.persist(func(st store.Store) store.Ticket {
		return st.PutSession(s.record())
	})
}

// armWill schedules will for at. s.mu must be held.
func (s *session) armWill(will *Message, at time.Time) {
	w := &pendingWill{msg: will, from: s.id, at: at}
	w.timer = time.AfterFunc(time.Until(at), func() { s.b.firePendingWill(s, w) })
	s.offline().will = w
}

// record is the stored form of the session, with its pending will so
// that a restart does not lose it. s.mu must be held.
func (s *session) record() store.Session {
	r := store.Session{ClientID: s.id, Version: s.version, ExpiryInterval: s.expiry, Expiry: s.expiresAt()}
	if c := s.client.Load(); c != nil {
		r.Username, r.UsernameFlag, r.CertUsername = c.Username, c.UsernameFlag, c.CertUsername
	}
	if w := s.pendingWill(); w != nil {
		r.Will, r.WillAt = w.msg, w.at
	}
	return r
}

// stopExpiry cancels the timers of a session a client is resuming; a
// delayed will is not sent [MQTT-3.1.3-9]. The stored deadline is
// cleared by the caller's next session write. s.mu must be held.
func (s *session) stopExpiry() {
	s.stopExpiryTimer()
	s.takeWill()
	s.expiryState = nil
}

// stopExpiryTimer stops the expiry timer. s.mu must be held.
func (s *session) stopExpiryTimer() {
	if a := s.expiryState; a != nil && a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

// takeWill removes and returns the pending will, for publishing now that
// the session ends. s.mu must be held.
func (s *session) takeWill() *pendingWill {
	w := s.pendingWill()
	if w != nil {
		w.timer.Stop()
		s.expiryState.will = nil
	}
	return w
}

// firePendingWill publishes a delayed will whose time has come, unless a
// client resumed the session first.
func (b *Broker) firePendingWill(s *session, w *pendingWill) {
	s.mu.Lock()
	if s.pendingWill() != w {
		s.mu.Unlock()
		return
	}
	s.expiryState.will = nil
	s.persist(func(st store.Store) store.Ticket { return st.PutSession(s.record()) })
	s.mu.Unlock()
	b.publishWill(w)
}

func (b *Broker) publishWill(w *pendingWill) {
	if w == nil {
		return
	}
	var r router
	r.route(b, w.msg, w.from)
	r.forward(w.msg, 0)
}

// expire ends an offline session whose expiry interval has passed.
func (b *Broker) expire(s *session) {
	b.mu.Lock()
	if b.closed || b.sessions[s.id] != s {
		b.mu.Unlock()
		return
	}
	// A client may have resumed the session after the timer fired but
	// before this ran: attach sets conn under s.mu before it lets go of
	// it, and clears the deadline.
	s.mu.Lock()
	at := s.expiresAt()
	resumed := s.conn != nil || at.IsZero() || time.Now().Before(at)
	s.mu.Unlock()
	if resumed {
		b.mu.Unlock()
		return
	}
	w, _ := b.discard(s)
	b.mu.Unlock()
	b.stats.sessionsExpired.Add(1)
	b.log.Debug("session expired", "client", s.id)
	b.redistribute(s, true)
	b.publishWill(w)
}
