package broker

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/topic"
)

// What an operator's tools (package admin: REST API, dashboard, $SYS,
// metrics) may see and do, through methods of Broker. None of them
// blocks on a client.

// Errors of the administrative methods; test with errors.Is.
var (
	ErrNoSession    = errors.New("no such client or session")
	ErrConnected    = errors.New("client is connected")
	ErrNotConnected = errors.New("client is not connected")
	ErrNoRetained   = errors.New("no retained message on that topic")
)

// ClientInfo describes one session and its connection, if any.
type ClientInfo struct {
	ClientID        string    `json:"client_id"`
	Username        string    `json:"username"`
	Anonymous       bool      `json:"anonymous"`
	Connected       bool      `json:"connected"`
	Address         string    `json:"address,omitempty"`        // remote address while connected
	ProtocolVersion byte      `json:"protocol_version"`         // 3, 4 or 5
	ConnectedSince  time.Time `json:"connected_since,omitzero"` // while connected
	KeepAlive       int       `json:"keep_alive"`               // seconds, as in force
	Persistent      bool      `json:"persistent"`               // outlives its connection
	ExpiresAt       time.Time `json:"expires_at,omitzero"`      // offline persistent sessions
	Subscriptions   int       `json:"subscriptions"`
	Queued          int       `json:"queued"`   // messages waiting
	Inflight        int       `json:"inflight"` // sent, not yet acknowledged
	BytesReceived   int64     `json:"bytes_received"`
	BytesSent       int64     `json:"bytes_sent"`
}

// ClientQuery selects clients: Search matches client id, username or
// address as a substring (empty: all); Offset and Limit page the result,
// ordered by client id (Limit 0: all).
type ClientQuery struct {
	Search        string
	Offset, Limit int
}

// SubscriptionInfo is one subscription of one session.
type SubscriptionInfo struct {
	ClientID          string `json:"client_id"`
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local"`
	RetainAsPublished bool   `json:"retain_as_published"`
	RetainHandling    byte   `json:"retain_handling"`
	SubscriptionID    uint32 `json:"subscription_id,omitempty"`
}

// SubscriptionQuery selects subscriptions: of one client (ClientID, empty:
// all) whose filter contains Search; paged like ClientQuery, ordered by
// client id then filter.
type SubscriptionQuery struct {
	ClientID, Search string
	Offset, Limit    int
}

// Clients returns the sessions q selects, ordered by client id, and how
// many it selects in all.
func (b *Broker) Clients(q ClientQuery) (items []ClientInfo, total int) {
	sessions := b.sessionList()
	items = make([]ClientInfo, 0, len(sessions))
	for _, s := range sessions {
		ci := s.info()
		if q.Search == "" || strings.Contains(ci.ClientID, q.Search) ||
			strings.Contains(ci.Username, q.Search) || strings.Contains(ci.Address, q.Search) {
			items = append(items, ci)
		}
	}
	slices.SortFunc(items, func(a, b ClientInfo) int { return cmp.Compare(a.ClientID, b.ClientID) })
	return page(items, q.Offset, q.Limit), len(items)
}

// Client returns the session of client id and its subscriptions, ordered
// by filter; ErrNoSession if there is none.
func (b *Broker) Client(id string) (ClientInfo, []SubscriptionInfo, error) {
	s := b.session(id)
	if s == nil {
		return ClientInfo{}, nil, fmt.Errorf("client %q: %w", id, ErrNoSession)
	}
	return s.info(), s.subscriptions(""), nil
}

// Disconnect ends the connection of client id, as an administrator: a v5
// client is told with DISCONNECT 0x98 (Administrative action). Its will
// is published, as for any connection the client did not end itself, and
// a persistent session stays. It returns ErrNoSession or ErrNotConnected
// when there is no such connection. It returns once the connection is
// cleaned up (at most the flush timeout for a client that does not read),
// so that what an administrator looks at next shows the client gone or
// offline: the dashboard reloads its list right after a kick.
func (b *Broker) Disconnect(id string) error {
	s := b.session(id)
	if s == nil {
		return fmt.Errorf("client %q: %w", id, ErrNoSession)
	}
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("client %q: %w", id, ErrNotConnected)
	}
	b.stats.kicked.Add(1)
	b.log.Info("client disconnected by an administrator", "client", id, "remote", c.nc.RemoteAddr(),
		"reason", packet.AdministrativeAction.Error())
	// Not the reading side: no lingering (see finish).
	c.finishWith(errKicked, packet.AdministrativeAction, false)
	<-c.ended()
	return nil
}

// DeleteSession ends the offline session of client id and deletes its
// stored state, as if it had expired: its pending will is published now.
// It returns ErrNoSession, or ErrConnected while a client uses it
// (Disconnect it first), and once the deletion is stored, the store's
// error if that failed.
func (b *Broker) DeleteSession(id string) error {
	b.mu.Lock()
	s := b.sessions[id]
	if s == nil {
		b.mu.Unlock()
		return fmt.Errorf("session %q: %w", id, ErrNoSession)
	}
	// Holding b.mu, no client can attach: one attaching now has set conn
	// by the time s.mu is ours.
	s.mu.Lock()
	online := s.conn != nil
	s.mu.Unlock()
	if online {
		b.mu.Unlock()
		return fmt.Errorf("session %q: %w", id, ErrConnected)
	}
	w, t := b.discard(s)
	b.mu.Unlock()
	b.log.Info("session deleted by an administrator", "client", id)
	b.redistribute(s, true)
	b.publishWill(w)
	return b.wait(t)
}

// Subscriptions returns the subscriptions q selects, ordered by client id
// then filter, and how many it selects in all.
func (b *Broker) Subscriptions(q SubscriptionQuery) (items []SubscriptionInfo, total int) {
	var sessions []*session
	if q.ClientID != "" {
		if s := b.session(q.ClientID); s != nil {
			sessions = []*session{s}
		}
	} else {
		sessions = b.sessionList()
		slices.SortFunc(sessions, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	}
	for _, s := range sessions {
		items = append(items, s.subscriptions(q.Search)...)
	}
	return page(items, q.Offset, q.Limit), len(items)
}

// Retained returns the retained messages whose topics match filter,
// ordered by topic and paged by offset and limit (0: all), and how many
// match in all. As for a subscription, wildcards at the first level do
// not match topics beginning with '$' ("$SYS/#" does). A bad filter is
// an error wrapping topic's. The messages are the broker's own: not to
// be modified.
func (b *Broker) Retained(filter string, offset, limit int) (items []*Message, total int, err error) {
	if err := topic.ValidateFilter(filter); err != nil {
		return nil, 0, fmt.Errorf("retained messages: filter %q: %w", filter, err)
	}
	b.retained.match(filter, time.Now(), func(m *Message) { items = append(items, m) })
	slices.SortFunc(items, func(a, b *Message) int { return cmp.Compare(a.Topic, b.Topic) })
	return page(items, offset, limit), len(items), nil
}

// RetainedMessage returns the message retained for topic (not to be
// modified), or ErrNoRetained.
func (b *Broker) RetainedMessage(topic string) (*Message, error) {
	if m := b.retained.get(topic, time.Now()); m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("topic %q: %w", topic, ErrNoRetained)
}

// DeleteRetained removes the message retained for topic, from memory and
// from the store (it returns once that is stored), on every node of a
// cluster, or returns ErrNoRetained.
func (b *Broker) DeleteRetained(topic string) error {
	t, ok := b.retained.delete(topic, b.store)
	if !ok {
		return fmt.Errorf("topic %q: %w", topic, ErrNoRetained)
	}
	if b.cluster != nil && !isSys(topic) {
		b.cluster.Unretain(topic)
	}
	return b.wait(t)
}

// session returns the session of client id, or nil.
func (b *Broker) session(id string) *session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[id]
}

// info describes the session. s.mu must not be held.
func (s *session) info() ClientInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	ci := ClientInfo{
		ClientID:        s.id,
		ProtocolVersion: s.version,
		Persistent:      s.persistent,
		ExpiresAt:       s.expiresAt(),
		Subscriptions:   s.subs.len(),
		Queued:          len(s.queue),
		Inflight:        len(s.inflight),
	}
	if cl := s.client.Load(); cl != nil {
		ci.Username, ci.Anonymous = cl.Username, !cl.UsernameFlag
	}
	if c := s.conn; c != nil {
		ci.Connected = true
		if a := c.nc.RemoteAddr(); a != nil {
			ci.Address = a.String()
		}
		ci.ConnectedSince = time.Unix(0, c.connectedAt)
		ci.KeepAlive = int(c.keepAlive)
		ci.BytesReceived, ci.BytesSent = c.bytesRead.Load(), c.bytesWritten.Load()
	}
	return ci
}

// subscriptions returns the session's subscriptions whose filters contain
// search, ordered by filter. s.mu must not be held.
func (s *session) subscriptions(search string) []SubscriptionInfo {
	s.mu.Lock()
	subs := make([]SubscriptionInfo, 0, s.subs.len())
	for sub := range s.subs.all() {
		if strings.Contains(sub.Filter, search) {
			subs = append(subs, subscriptionInfo(s.id, sub))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(subs, func(a, b SubscriptionInfo) int { return cmp.Compare(a.Filter, b.Filter) })
	return subs
}

func subscriptionInfo(id string, sub store.Subscription) SubscriptionInfo {
	return SubscriptionInfo{
		ClientID: id, Filter: sub.Filter, QoS: sub.QoS, NoLocal: sub.NoLocal,
		RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling,
		SubscriptionID: sub.SubscriptionID,
	}
}

// page returns items[offset:offset+limit] within bounds; limit 0 (or
// less): to the end.
func page[T any](items []T, offset, limit int) []T {
	offset = min(max(offset, 0), len(items))
	items = items[offset:]
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}
