package bridge

import (
	"errors"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ternmq/tern/broker"
)

// Manager runs the configured bridges of one broker.
type Manager struct {
	b    *broker.Broker
	log  *slog.Logger
	node string

	mu      sync.Mutex // held while bridges start and stop: one Apply at a time
	bridges map[string]*Bridge
	closed  bool
}

// NewManager returns a Manager with no bridges for b. Bridges name
// themselves to remotes with the host name (client_id's default).
func NewManager(b *broker.Broker, log *slog.Logger) *Manager {
	node, err := os.Hostname()
	if err != nil || node == "" {
		node = "tern"
	}
	return &Manager{b: b, log: log, node: node, bridges: make(map[string]*Bridge)}
}

// Apply makes the running bridges those of cfgs: it starts new ones,
// stops removed ones (and deletes their local session with what it
// queued), and restarts changed ones (their local session and what it
// queued stay). Unchanged bridges go on undisturbed. A configuration
// that does not check out is refused as a whole.
func (m *Manager) Apply(cfgs []Config) error {
	if err := Check(cfgs); err != nil {
		return err
	}
	rs := make(map[string]*resolved, len(cfgs))
	for _, c := range cfgs {
		r, _ := c.resolve()
		rs[c.Name] = r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("bridges: stopped")
	}
	var errs []error
	names := make([]string, 0, len(m.bridges))
	for name := range m.bridges {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		br := m.bridges[name]
		r, ok := rs[name]
		if ok && same(br.cfg, r) {
			continue
		}
		br.stop()
		delete(m.bridges, name)
		if !ok {
			m.deleteSession(name)
			m.log.Info("bridge removed", "bridge", name)
		}
	}
	for _, c := range cfgs {
		if _, ok := m.bridges[c.Name]; ok {
			continue
		}
		br, err := start(m.b, rs[c.Name], m.node, m.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.bridges[c.Name] = br
		m.log.Info("bridge started", "bridge", c.Name, "url", c.URL, "topics", len(c.Topics))
	}
	return errors.Join(errs...)
}

// same reports whether two configurations of a bridge run alike: the same
// settings and the same password (a password file's content counts).
func same(a, b *resolved) bool {
	return reflect.DeepEqual(a.Config, b.Config) && slices.Equal(a.password, b.password)
}

// deleteSession drops a removed bridge's local session. Its connection
// may take a moment to end after the bridge stopped.
func (m *Manager) deleteSession(name string) {
	id := LocalClientID(name)
	for range 50 {
		err := m.b.DeleteSession(id)
		if err == nil || errors.Is(err, broker.ErrNoSession) {
			return
		}
		if !errors.Is(err, broker.ErrConnected) {
			m.log.Error("bridge: session not deleted", "bridge", name, "err", err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.log.Error("bridge: session still connected, not deleted", "bridge", name)
}

// Stats returns the counters of the running bridges, by name.
func (m *Manager) Stats() []Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Stats, 0, len(m.bridges))
	for _, br := range m.bridges {
		out = append(out, br.Stats())
	}
	slices.SortFunc(out, func(a, b Stats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Close stops every bridge; call it before closing the broker. What the
// bridges had not forwarded stays queued in their sessions.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for name, br := range m.bridges {
		br.stop()
		delete(m.bridges, name)
	}
}
