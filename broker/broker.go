package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/store/memory"
	"github.com/ternmq/tern/topic"
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("broker: server closed")

// Broker is an MQTT server. Create it with New, hand it listeners with
// Serve (or single connections with ServeConn), stop it with Close.
type Broker struct {
	options  atomic.Pointer[Options] // swapped by Reload; read with opts()
	log      *slog.Logger
	store    store.Store
	hooks    hooks
	subs     *topic.Trie[*session, subOpts]
	retained retained
	stats    counters
	shared   sharedPicker
	observer Observer // Options.Observer, fixed by New
	cluster  Cluster  // Options.Cluster, fixed by New
	streams  bool     // cluster.Streams()
	// remoteRouters keep the scratch of routing messages from other
	// nodes, as each connection's router does for its own.
	remoteRouters sync.Pool
	// retainedFullLogged is when a full retained set was last logged
	// (Unix ns).
	retainedFullLogged atomic.Int64
	refusalLog         rateLog               // connections refused before CONNECT (refusallog.go)
	storeErr           atomic.Pointer[error] // the first failed store write (health.go)

	mu        sync.Mutex
	sessions  map[string]*session
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	closed    bool
	draining  bool           // Drain was called: no new connections
	wg        sync.WaitGroup // live connections

	admission admission
	stop      chan struct{} // closed by Close
	sweeping  sync.WaitGroup
}

// New returns a broker with opts, restoring sessions and retained messages
// from opts.Store.
func New(opts Options) (*Broker, error) {
	opts.setDefaults()
	b := &Broker{
		log:       opts.Logger,
		store:     opts.Store,
		hooks:     sortHooks(opts.Hooks),
		subs:      topic.NewTrie[*session, subOpts](),
		sessions:  make(map[string]*session),
		conns:     make(map[*conn]struct{}),
		listeners: make(map[net.Listener]struct{}),
		stop:      make(chan struct{}),
	}
	b.options.Store(&opts)
	b.shared.strategy = opts.SharedStrategy
	b.observer = opts.Observer
	b.cluster = opts.Cluster
	b.streams = b.cluster != nil && b.cluster.Streams()
	if b.store == nil {
		b.store = memory.New()
	}
	if err := b.restore(); err != nil {
		return nil, fmt.Errorf("broker: restore: %w", err)
	}
	b.sweeping.Add(2)
	go b.sweeper()
	go b.trimmer()
	return b, nil
}

// restore loads persistent sessions and retained messages from the store.
func (b *Broker) restore() error {
	states, retained, err := b.store.Load()
	if err != nil {
		return err
	}
	for _, m := range retained {
		b.retained.set(m, nil, retainLimits{}) // what was kept stays kept
	}
	now := time.Now()
	var wills []store.Session
	var due []*pendingWill // of sessions that ended while the broker was down
	for _, st := range states {
		s := newSession(b, st.Session.ClientID, true)
		// The same identity as before the restart, so that the same ACL
		// rules apply and the same owner may resume it.
		s.client.Store(&auth.Client{ClientID: s.id, Username: st.Session.Username,
			UsernameFlag: st.Session.UsernameFlag, CertUsername: st.Session.CertUsername, Version: st.Session.Version})
		s.version = st.Session.Version
		s.expiry = st.Session.ExpiryInterval
		at := st.Session.Expiry
		if at.IsZero() && s.expiry != neverExpires {
			// Connected when the broker stopped: the client is away from now.
			at = now.Add(time.Duration(s.expiry) * time.Second)
		}
		if !at.IsZero() {
			// Time spent down counts towards expiry.
			if !at.After(now) {
				b.stats.sessionsExpired.Add(1)
				b.store.DeleteSession(s.id)
				if w := st.Session.Will; w != nil {
					due = append(due, &pendingWill{msg: w, from: s.id})
				}
				continue
			}
			s.expireAt(at)
		}
		if st.Session.Will != nil {
			wills = append(wills, st.Session)
		}
		b.load(s, &st)
		b.sessions[s.id] = s
	}
	// Pending wills are armed once every subscription is back; one already
	// due goes out at once.
	for _, r := range wills {
		if s := b.sessions[r.ClientID]; s != nil {
			s.mu.Lock()
			s.armWill(r.Will, r.WillAt)
			s.mu.Unlock()
		}
	}
	// A session that ended while the broker was down had its will due by
	// then at the latest [MQTT-3.1.3-9].
	for _, w := range due {
		b.publishWill(w)
	}
	if len(states) > 0 || len(retained) > 0 {
		b.log.Info("restored state", "sessions", len(states), "retained", len(retained))
	}
	return nil
}

// load gives s the subscriptions and messages of st.
func (b *Broker) load(s *session, st *store.SessionState) {
	for _, sub := range st.Subscriptions {
		s.subs.put(sub)
		b.subscribe(sub.Filter, s, optsOf(sub))
	}
	for i := range st.Outbound {
		o := &st.Outbound[i]
		s.seq = max(s.seq, o.Seq)
		if o.State == store.Queued {
			s.push(o) // within the limits when stored
		} else {
			s.putInflight(o)
			s.nextID = max(s.nextID, o.PacketID)
		}
	}
	for _, in := range st.InboundQoS2 {
		s.putInQoS2(in)
	}
}

func optsOf(sub store.Subscription) subOpts {
	return subOpts{qos: sub.QoS, noLocal: sub.NoLocal, retainAsPublished: sub.RetainAsPublished, subID: sub.SubscriptionID}
}

// Serve accepts connections on l until Close or an accept error.
func (b *Broker) Serve(l net.Listener) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrServerClosed
	}
	b.listeners[l] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.listeners, l)
		b.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			b.mu.Lock()
			closed := b.closed || b.draining
			b.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of descriptors or similar: back off rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				b.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go b.serveConn(nc, false)
	}
}

// ServeConn serves one client connection until it ends.
func (b *Broker) ServeConn(nc net.Conn) { b.serveConn(nc, true) }

// open admits nc and registers its connection; nil: refused.
func (b *Broker) open(nc net.Conn) *conn {
	ip := hostOf(nc.RemoteAddr())
	if err := b.admit(ip); err != nil {
		b.stats.refused[refusedConnectionLimit].Add(1)
		b.logRefusedConn("", nc.RemoteAddr(), err.Error())
		nc.Close()
		return nil
	}
	b.mu.Lock()
	if b.closed || b.draining {
		b.mu.Unlock()
		b.release(ip)
		nc.Close()
		return nil
	}
	c := newConn(b, nc)
	b.conns[c] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	return c
}

// forget undoes open once c has ended.
func (b *Broker) forget(c *conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	b.release(hostOf(c.nc.RemoteAddr()))
	b.wg.Done()
}

// Drain stops the listeners and ends every client's connection as Close
// does (a v5 client is told the server is shutting down, 0x8B), but keeps
// the sessions and the store: in a cluster, clients that reconnect to
// other nodes take their sessions from here meanwhile (ReleaseSession).
// It returns once the connections have ended; Close follows.
func (b *Broker) Drain() {
	b.mu.Lock()
	if b.closed || b.draining {
		b.mu.Unlock()
		return
	}
	b.draining = true
	b.disconnectAll()
}

// disconnectAll closes the listeners and ends every connection (v5
// clients are told the server is shutting down), and returns once they
// have ended. b.mu must be held; disconnectAll releases it.
func (b *Broker) disconnectAll() {
	for l := range b.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	b.wg.Wait()
}

// Close stops the listeners, disconnects every client after flushing what
// it was sent (v5 clients are told the server is shutting down), waits for
// the connections to end and closes the store. Persistent sessions stay in
// the store.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.stop)
	b.disconnectAll()
	b.sweeping.Wait()
	// Offline sessions keep their stored expiry deadline; their timers
	// must not touch the store once it is closed.
	b.mu.Lock()
	for _, s := range b.sessions {
		s.mu.Lock()
		s.stopExpiryTimer()
		s.takeWill()
		s.mu.Unlock()
	}
	b.mu.Unlock()
	return b.store.Close()
}

// Publish routes a message from the server itself (not from a client)
// and returns once the sessions that keep it have it in the store.
func (b *Broker) Publish(m *Message) error {
	var r router
	t, _ := r.route(b, m, "")
	return b.wait(max(t, r.forward(m, 0)))
}
