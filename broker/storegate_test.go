package broker_test

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/store/memory"
)

// gatedStore is an in-memory store whose commits the test controls:
// every write gets a ticket, and Wait blocks while the gate is shut (a
// slow fsync) or fails once fail is set (a broken disk). Writes submitted
// inside Atomic are recorded with the call's number, to check what
// commits together.
type gatedStore struct {
	*memory.Store
	next    atomic.Uint64
	fail    atomic.Bool
	mu      sync.Mutex
	cond    sync.Cond
	shut    bool
	durable store.Ticket // committed up to here
	atomics int          // Atomic calls so far
	inside  int          // the Atomic call in progress, 0 outside
	log     []string     // "op client n" for each write; n is the Atomic call or 0
}

var errDisk = errors.New("disk on fire")

func newGatedStore() *gatedStore {
	g := &gatedStore{Store: memory.New()}
	g.cond.L = &g.mu
	return g
}

// gate shuts (true) or opens the commits.
func (g *gatedStore) gate(shut bool) {
	g.mu.Lock()
	g.shut = shut
	if !shut {
		g.durable = store.Ticket(g.next.Load())
	}
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gatedStore) Wait(t store.Ticket) error {
	if t == 0 {
		return nil
	}
	if g.fail.Load() {
		return errDisk
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for t > g.durable {
		g.cond.Wait()
	}
	return nil
}

func (g *gatedStore) Atomic(f func()) {
	g.mu.Lock()
	g.atomics++
	n := g.atomics
	g.mu.Unlock()
	g.setInside(n)
	defer g.setInside(0)
	f()
}

func (g *gatedStore) setInside(n int) {
	g.mu.Lock()
	g.inside = n
	g.mu.Unlock()
}

func (g *gatedStore) tick(op, id string) store.Ticket {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.log = append(g.log, op+" "+id+" "+string(rune('0'+g.inside)))
	t := store.Ticket(g.next.Add(1))
	if !g.shut {
		g.durable = t
	}
	return t
}

// writes returns the log of writes so far.
func (g *gatedStore) writes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.log...)
}

func (g *gatedStore) PutSession(s store.Session) store.Ticket {
	g.Store.PutSession(s)
	return g.tick("PutSession", s.ClientID)
}
func (g *gatedStore) DeleteSession(id string) store.Ticket {
	g.Store.DeleteSession(id)
	return g.tick("DeleteSession", id)
}
func (g *gatedStore) PutSubscription(id string, s store.Subscription) store.Ticket {
	g.Store.PutSubscription(id, s)
	return g.tick("PutSubscription", id)
}
func (g *gatedStore) DeleteSubscription(id, f string) store.Ticket {
	g.Store.DeleteSubscription(id, f)
	return g.tick("DeleteSubscription", id)
}
func (g *gatedStore) PutOutbound(id string, o store.Outbound) store.Ticket {
	g.Store.PutOutbound(id, o)
	return g.tick("PutOutbound", id)
}
func (g *gatedStore) DeleteOutbound(id string, seq uint64) store.Ticket {
	g.Store.DeleteOutbound(id, seq)
	return g.tick("DeleteOutbound", id)
}
func (g *gatedStore) PutInboundQoS2(id string, in store.Inbound) store.Ticket {
	g.Store.PutInboundQoS2(id, in)
	return g.tick("PutInboundQoS2", id)
}
func (g *gatedStore) DeleteInboundQoS2(id string, p uint16) store.Ticket {
	g.Store.DeleteInboundQoS2(id, p)
	return g.tick("DeleteInboundQoS2", id)
}
func (g *gatedStore) PutRetained(m *store.Message) store.Ticket {
	g.Store.PutRetained(m)
	return g.tick("PutRetained", m.Topic)
}
func (g *gatedStore) DeleteRetained(topic string) store.Ticket {
	g.Store.DeleteRetained(topic)
	return g.tick("DeleteRetained", topic)
}
