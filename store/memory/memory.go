// Package memory is a Store that keeps everything in RAM: state survives a
// broker restart within one process (tests) but not the process.
package memory

import (
	"cmp"
	"slices"
	"sync"

	"github.com/ternmq/tern/store"
)

// Store is an in-memory store.Store.
type Store struct {
	mu       sync.Mutex
	sessions map[string]*entry
	retained map[string]*store.Message
}

type entry struct {
	session  store.Session
	subs     map[string]store.Subscription
	outbound map[uint64]store.Outbound
	inbound  map[uint16]uint64 // packet id -> token
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{sessions: make(map[string]*entry), retained: make(map[string]*store.Message)}
}

// get returns the entry for id, creating it. mu must be held.
func (s *Store) get(id string) *entry {
	e := s.sessions[id]
	if e == nil {
		e = &entry{
			session:  store.Session{ClientID: id},
			subs:     make(map[string]store.Subscription),
			outbound: make(map[uint64]store.Outbound),
			inbound:  make(map[uint16]uint64),
		}
		s.sessions[id] = e
	}
	return e
}

func (s *Store) PutSession(sess store.Session) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(sess.ClientID).session = sess
	return 0
}

func (s *Store) DeleteSession(id string) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return 0
}

func (s *Store) PutSubscription(id string, sub store.Subscription) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(id).subs[sub.Filter] = sub
	return 0
}

func (s *Store) DeleteSubscription(id, filter string) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.sessions[id]; e != nil {
		delete(e.subs, filter)
	}
	return 0
}

func (s *Store) PutOutbound(id string, o store.Outbound) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(id).outbound[o.Seq] = o
	return 0
}

func (s *Store) DeleteOutbound(id string, seq uint64) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.sessions[id]; e != nil {
		delete(e.outbound, seq)
	}
	return 0
}

func (s *Store) PutInboundQoS2(id string, in store.Inbound) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(id).inbound[in.PacketID] = in.Token
	return 0
}

func (s *Store) DeleteInboundQoS2(id string, pid uint16) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.sessions[id]; e != nil {
		delete(e.inbound, pid)
	}
	return 0
}

func (s *Store) PutRetained(m *store.Message) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retained[m.Topic] = m
	return 0
}

func (s *Store) DeleteRetained(topic string) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.retained, topic)
	return 0
}

// Atomic runs f: every write here is applied as it is submitted.
func (s *Store) Atomic(f func()) { f() }

// Wait returns at once: a write is done when it returns.
func (s *Store) Wait(store.Ticket) error { return nil }

func (s *Store) Load() ([]store.SessionState, []*store.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	states := make([]store.SessionState, 0, len(s.sessions))
	for _, e := range s.sessions {
		st := store.SessionState{Session: e.session}
		for _, sub := range e.subs {
			st.Subscriptions = append(st.Subscriptions, sub)
		}
		for _, o := range e.outbound {
			st.Outbound = append(st.Outbound, o)
		}
		slices.SortFunc(st.Outbound, func(a, b store.Outbound) int { return cmp.Compare(a.Seq, b.Seq) })
		for pid, token := range e.inbound {
			st.InboundQoS2 = append(st.InboundQoS2, store.Inbound{PacketID: pid, Token: token})
		}
		slices.SortFunc(st.InboundQoS2, store.ByPacketID)
		states = append(states, st)
	}
	retained := make([]*store.Message, 0, len(s.retained))
	for _, m := range s.retained {
		retained = append(retained, m)
	}
	return states, retained, nil
}

func (s *Store) Close() error { return nil }
