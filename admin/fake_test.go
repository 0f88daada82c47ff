package admin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// fakeBroker is a Broker kept in maps, for the handlers' tests.
type fakeBroker struct {
	mu        sync.Mutex
	stats     broker.Stats
	clients   map[string]broker.ClientInfo
	subs      []broker.SubscriptionInfo
	retained  map[string]*broker.Message
	published []*broker.Message
	health    error
	kicked    []string
}

var _ Broker = (*fakeBroker)(nil)

func newFake() *fakeBroker {
	f := &fakeBroker{clients: map[string]broker.ClientInfo{}, retained: map[string]*broker.Message{}}
	f.stats.Connections = 1
	f.stats.MessagesIn = 7
	f.stats.MessagesReceivedQoS = [3]int64{4, 2, 1}
	f.stats.BytesSent = 1234
	f.stats.Dropped.Slow = 3
	f.stats.RefusedConnects.BadCredentials = 2
	for _, c := range []broker.ClientInfo{
		{ClientID: "alpha", Username: "alice", Connected: true, Address: "127.0.0.1:5000", ProtocolVersion: 5,
			ConnectedSince: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), KeepAlive: 60, Subscriptions: 1},
		{ClientID: "beta", Persistent: true, ProtocolVersion: 4, ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ClientID: "a/b", Connected: true, ProtocolVersion: 4},
	} {
		f.clients[c.ClientID] = c
	}
	f.subs = []broker.SubscriptionInfo{{ClientID: "alpha", Filter: "a/#", QoS: 1}, {ClientID: "beta", Filter: "b/+", QoS: 2}}
	f.retained["t/1"] = &broker.Message{Topic: "t/1", Payload: []byte("hello"), QoS: 1, Retain: true,
		Expiry:     time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Properties: packet.Properties{ContentType: "text/plain", User: []packet.UserProperty{{Key: "k", Value: "v"}}}}
	f.retained["t/2"] = &broker.Message{Topic: "t/2", Payload: []byte{0xff, 0xfe}, Retain: true}
	return f
}

func pageOf[T any](all []T, offset, limit int) []T {
	if offset > len(all) {
		return nil
	}
	all = all[offset:]
	if limit > 0 && limit < len(all) {
		all = all[:limit]
	}
	return all
}

func (f *fakeBroker) Stats() broker.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakeBroker) Clients(q broker.ClientQuery) ([]broker.ClientInfo, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []broker.ClientInfo
	for _, c := range f.clients {
		if strings.Contains(c.ClientID, q.Search) || strings.Contains(c.Username, q.Search) {
			all = append(all, c)
		}
	}
	slices.SortFunc(all, func(a, b broker.ClientInfo) int { return strings.Compare(a.ClientID, b.ClientID) })
	return pageOf(all, q.Offset, q.Limit), len(all)
}

func (f *fakeBroker) Client(id string) (broker.ClientInfo, []broker.SubscriptionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[id]
	if !ok {
		return c, nil, broker.ErrNoSession
	}
	var subs []broker.SubscriptionInfo
	for _, s := range f.subs {
		if s.ClientID == id {
			subs = append(subs, s)
		}
	}
	return c, subs, nil
}

func (f *fakeBroker) Disconnect(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[id]
	switch {
	case !ok:
		return broker.ErrNoSession
	case !c.Connected:
		return broker.ErrNotConnected
	}
	c.Connected = false
	f.clients[id] = c
	f.kicked = append(f.kicked, id)
	return nil
}

func (f *fakeBroker) DeleteSession(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[id]
	switch {
	case !ok:
		return broker.ErrNoSession
	case c.Connected:
		return broker.ErrConnected
	}
	delete(f.clients, id)
	return nil
}

func (f *fakeBroker) Subscriptions(q broker.SubscriptionQuery) ([]broker.SubscriptionInfo, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []broker.SubscriptionInfo
	for _, s := range f.subs {
		if (q.ClientID == "" || s.ClientID == q.ClientID) && strings.Contains(s.Filter, q.Search) {
			all = append(all, s)
		}
	}
	return pageOf(all, q.Offset, q.Limit), len(all)
}

func (f *fakeBroker) Retained(filter string, offset, limit int) ([]*broker.Message, int, error) {
	if err := topic.ValidateFilter(filter); err != nil {
		return nil, 0, fmt.Errorf("filter: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []*broker.Message
	for _, m := range f.retained {
		if topic.Match(filter, m.Topic) {
			all = append(all, m)
		}
	}
	slices.SortFunc(all, func(a, b *broker.Message) int { return strings.Compare(a.Topic, b.Topic) })
	return pageOf(all, offset, limit), len(all), nil
}

func (f *fakeBroker) RetainedMessage(t string) (*broker.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.retained[t]
	if !ok {
		return nil, broker.ErrNoRetained
	}
	return m, nil
}

func (f *fakeBroker) DeleteRetained(t string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.retained[t]; !ok {
		return broker.ErrNoRetained
	}
	delete(f.retained, t)
	return nil
}

func (f *fakeBroker) Publish(m *broker.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Topic == "fail" {
		return errors.New("store failed")
	}
	f.published = append(f.published, m)
	if m.Retain {
		f.retained[m.Topic] = m
	}
	return nil
}

func (f *fakeBroker) Health() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health
}
