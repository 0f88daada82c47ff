package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// Defaults for the zero values of SessionOptions.
const DefaultMaxQueued = 1000

// SessionOptions configure NewSession.
type SessionOptions struct {
	// Options are the connection's. CleanStart applies to the first
	// connection only; later ones resume the session (CleanStart false,
	// the same client id). An empty ClientID is generated before 5.0 and
	// assigned by the server in 5.0, then kept. For 5.0, set
	// Properties.SessionExpiry for the server to keep the session across
	// a reconnect; without it the server starts a new one each time and
	// the Session subscribes again. OnMessage and the handlers given to
	// SubscribeFunc keep working across connections.
	Options

	// Servers, when set, are the URLs of several servers (as
	// Options.URL; a cluster, or a primary and a standby) that replace
	// Address and URL: the first attempt goes to the first, and after a
	// failed attempt or a lost connection the next goes to the next
	// server, round after round. The backoff waits only after a round in
	// which every server failed, or after a loss. A Dial function (or
	// BeforeConnect) still decides how to reach the URL it is given.
	Servers []string
	// BeforeConnect, when set, is called before each connection attempt
	// with the Options it is to use (URL set to the server's turn) and
	// may change them: credentials that expire (a JWT or SAS token),
	// the URL, TLSConfig, Dial, properties. ClientID and CleanStart stay
	// the Session's. An error fails the attempt (OnConnectError hears of
	// it, and the next follows after the backoff). With BeforeConnect set,
	// refused credentials (bad user name or password, not authorized) do
	// not end the Session: the next attempt may bring new ones.
	BeforeConnect func(ctx context.Context, o *Options) error

	// Backoff spaces connection attempts.
	Backoff Backoff
	// MaxQueued bounds the publishes waiting to be sent or acknowledged;
	// beyond it Publish fails with ErrQueueFull. 0 means DefaultMaxQueued.
	MaxQueued int
	// Store, when set, keeps unfinished QoS 1 and 2 publishes on disk (see
	// Store, DirStore); NewSession sends what it holds. Nil: in memory.
	Store Store

	// OnConnect is called after each successful connection, once the
	// subscriptions are renewed if the server had lost the session, before
	// the queued publishes go out.
	OnConnect func(*packet.Connack)
	// OnConnectionLost is called when an established connection ends other
	// than by Disconnect or Close, with the reason (Client.Err).
	OnConnectionLost func(error)
	// OnConnectError is called when a connection attempt fails; another
	// follows after the backoff unless the server refused the client
	// itself (see NewSession): then it is called too, before the Session
	// ends (Done closes once it has returned).
	OnConnectError func(error)
}

// Session is an MQTT session that outlives connections: it connects in the
// background, reconnects with backoff when the connection is lost and
// resumes the session. Its methods are safe for concurrent use.
//
// Publish queues the message and returns when its flow is complete, across
// reconnects if need be. Queued messages are sent in order; after a
// reconnect, those the server had not acknowledged are sent again first,
// with the same packet identifier and DUP set [MQTT-4.4.0-1], and QoS 2
// flows that had reached PUBREL continue with PUBREL. If the server lost
// the session (Session Present 0), the subscriptions are made again and
// unfinished messages are sent as new ones (a QoS 2 message whose PUBREC
// had come counts as delivered). Received QoS 2 packet identifiers are
// kept across connections, so a message the server sends again is not
// handed to the application twice.
//
// A connection attempt refused for a reason that retrying cannot fix
// (bad user name or password, not authorized, banned, client identifier
// not valid, unsupported protocol version) ends the Session: Done closes
// and Err returns the *ConnectError.
type Session struct {
	opts   SessionOptions
	router Router
	ctx    context.Context // ends with Disconnect or Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the connection loop has returned

	sw  *storeWriter // writes to opts.Store; nil without one
	log *slog.Logger

	mu         sync.Mutex
	queue      []*outMsg          // unfinished publishes, in seq order
	storing    int                // publishes being written to the Store before they are queued
	finished   bool               // the connection loop has failed the waiting publishes
	nextSeq    uint64             // the next message's seq
	emptied    chan struct{}      // closed while queue is empty
	wake       chan struct{}      // capacity 1: the sender has something to do
	client     *Client            // the connection, nil while there is none
	up         chan struct{}      // closed while client is set
	subs       []*subRecord       // subscriptions to make again for a new session
	closing    bool               // Disconnect or Close: Publish is refused
	stopping   bool               // the connection loop ends at the next loss
	endConn    func(*Client) bool // how stop ends the connection: Disconnect or Close
	err        error              // why the Session ended
	clientID   string
	server     int             // the index in opts.Servers of the next attempt's server
	cleanLast  bool            // the last connection started clean: the server dropped that session when it ended
	received   map[uint16]bool // inbound QoS 2 ids; the connection's while one runs
	prevDone   <-chan struct{} // the last connection's Done: its handlers may still run
	inCallback bool            // the connection loop is in OnConnect, OnConnectError or OnConnectionLost
	req        requester
}

// outMsg is a publish in the Session's queue.
type outMsg struct {
	seq    uint64
	p      *packet.Publish // the Session's copy
	id     uint16          // packet id it was sent under; 0: not sent in this session
	pubrel bool            // QoS 2 reached PUBREL
	done   chan error      // capacity 1; nil for messages loaded from the Store
}

// subRecord is one SubscribeFunc call's subscriptions. Only active ones
// (SUBACK received) are made again by a new connection: the call itself
// makes the others.
type subRecord struct {
	subs   []packet.Subscription
	props  packet.Properties // the SUBSCRIBE's
	active bool
}

// NewSession checks o, loads o.Store and starts connecting in the
// background. AwaitConnection waits for the connection; Publish,
// SubscribeFunc and the others may be called at once.
func NewSession(o SessionOptions) (*Session, error) {
	if len(o.Servers) > 0 {
		o.Servers = slices.Clone(o.Servers)
		o.Address, o.URL = "", o.Servers[0]
	}
	if err := o.Options.normalize(); err != nil {
		return nil, err
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	s := &Session{
		log:      o.logger(),
		opts:     o,
		done:     make(chan struct{}),
		emptied:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		up:       make(chan struct{}),
		clientID: o.ClientID,
		received: make(map[uint16]bool),
	}
	close(s.emptied)
	if s.clientID == "" && o.Version != packet.V5 {
		// The session is found again by its client id, so it needs one
		// from the start.
		s.clientID = "tern-" + rand.Text()[:16]
	}
	if o.Store != nil {
		ms, err := o.Store.Load()
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			s.queue = append(s.queue, &outMsg{seq: m.Seq, p: m.Publish, id: m.PacketID, pubrel: m.Pubrel})
			s.nextSeq = m.Seq + 1
		}
		if len(s.queue) > 0 {
			s.emptied = make(chan struct{})
		}
		s.sw = newStoreWriter(o.Store, s.log)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// AwaitConnection waits until the Session is connected, ctx ends or the
// Session ends.
func (s *Session) AwaitConnection(ctx context.Context) error {
	_, err := s.awaitClient(ctx)
	return err
}

// awaitClient returns the current connection, waiting for one.
func (s *Session) awaitClient(ctx context.Context) (*Client, error) {
	for {
		s.mu.Lock()
		c, up := s.client, s.up
		s.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, ErrClosed // after Disconnect: Err is nil
		}
	}
}

// Client returns the current connection, or nil while there is none. It
// is for inspection (Connack); publishing or subscribing through it
// bypasses the Session's queue and subscription record.
func (s *Session) Client() *Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// Done is closed when the Session has ended: after Disconnect or Close,
// or a refusal that retrying cannot fix.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the Session ended: nil while it runs and after
// Disconnect, ErrClosed after Close, or the *ConnectError that ended it.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Publish queues p and returns when its flow is complete (QoS 0: when it
// was written), possibly over several connections, or when ctx ends. p is
// copied; it may be reused once Publish returns. With a Store, a QoS 1 or
// 2 message is in it before Publish returns nil. When ctx ends first the
// message stays queued and is still sent. A v5 failure reason code from
// the server is returned as a *ReasonError; ErrQueueFull when the queue is
// full; ErrClosed after Disconnect or Close (the message stays in the
// Store, if any, for the next Session on it). The Store is written from a
// goroutine of its own, grouping the writes of concurrent calls; a
// Store's failure to write the message is returned, and then it is not
// sent.
func (s *Session) Publish(ctx context.Context, p *packet.Publish) error {
	done, err := s.Queue(p)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Queue queues p as Publish does and returns at once: the channel
// receives the outcome Publish would return once the flow is complete.
// Messages queued one after the other go out in that order, so a caller
// may have many in flight and still keep their order (a bridge
// forwarding a stream).
func (s *Session) Queue(p *packet.Publish) (<-chan error, error) {
	if p.QoS > 2 {
		return nil, fmt.Errorf("client: publish: QoS %d: %w", p.QoS, packet.MalformedPacket)
	}
	if p.Properties.TopicAlias != nil {
		return nil, errors.New("client: publish: a Session assigns topic aliases itself")
	}
	if err := validTopic(p.Topic); err != nil {
		return nil, err
	}
	pp := *p
	// The message outlives Publish (ctx, reconnects): own what the caller
	// may reuse.
	pp.Payload = bytes.Clone(p.Payload)
	pr := &pp.Properties
	pr.CorrelationData = bytes.Clone(pr.CorrelationData)
	pr.User = slices.Clone(pr.User)
	pr.SubscriptionIDs = slices.Clone(pr.SubscriptionIDs)
	if pr.PayloadFormat != nil {
		pr.PayloadFormat = new(*pr.PayloadFormat)
	}
	if pr.MessageExpiry != nil {
		pr.MessageExpiry = new(*pr.MessageExpiry)
	}
	pp.Dup, pp.PacketID = false, 0
	m := &outMsg{p: &pp, done: make(chan error, 1)}

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(s.queue) + s.storing; n >= s.opts.MaxQueued {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %d messages waiting", ErrQueueFull, n)
	}
	m.seq = s.nextSeq
	s.nextSeq++
	if len(s.queue) == 0 && s.storing == 0 {
		s.emptied = make(chan struct{})
	}
	if p.QoS > 0 && s.sw != nil {
		// Queued once it is in the Store, by the store writer, which
		// keeps the order of seq. Neither mu nor the caller waits for
		// the disk.
		s.storing++
		s.sw.add(storeOp{m: StoredMessage{Seq: m.seq, Publish: m.p}, after: func(err error) { s.stored(m, err) }})
		s.mu.Unlock()
	} else {
		s.queue = append(s.queue, m)
		s.mu.Unlock()
		s.poke()
	}
	return m.done, nil
}

// stored queues m, a new message, once the Store has it, or fails its
// Publish with the Store's error.
func (s *Session) stored(m *outMsg, err error) {
	s.mu.Lock()
	s.storing--
	if err == nil && s.finished {
		err = s.err
		if err == nil {
			err = ErrClosed
		}
	}
	if err != nil {
		s.checkEmpty()
		s.mu.Unlock()
		m.done <- err
		return
	}
	i, _ := s.find(m.seq)
	s.queue = slices.Insert(s.queue, i, m)
	s.mu.Unlock()
	s.poke()
}

func validTopic(name string) error {
	if err := topic.ValidateName(name); err != nil {
		return fmt.Errorf("client: publish: %w", err)
	}
	return nil
}

// poke wakes the sender.
func (s *Session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SubscribeFunc subscribes like Client.SubscribeFunc (h nil: messages go
// to OnMessage) and records subs, to be made again whenever the server
// has lost the session. It waits for a connection, and tries again on the
// next one if the connection is lost before the SUBACK. Filters the server
// refuses are not recorded. A call that fails (or whose ctx ends) undoes
// only what it did: an earlier subscription to the same filter stays
// recorded, with its handler.
func (s *Session) SubscribeFunc(ctx context.Context, h Handler, subs ...packet.Subscription) (*packet.Suback, error) {
	return s.SubscribePacket(ctx, h, &packet.Subscribe{Subscriptions: subs})
}

// SubscribePacket is SubscribeFunc for a SUBSCRIBE of the caller's
// making: with v5 properties (Subscription Identifier, user properties),
// which a renewal sends again.
func (s *Session) SubscribePacket(ctx context.Context, h Handler, sp *packet.Subscribe) (*packet.Suback, error) {
	subs := sp.Subscriptions
	if len(subs) == 0 {
		return nil, errors.New("client: subscribe: no topic filters")
	}
	undo := func(int) {}
	if h != nil {
		undo = s.router.handleAll(h, subs)
	}
	rec := &subRecord{subs: slices.Clone(subs), props: sp.Properties}
	s.mu.Lock()
	s.subs = append(s.subs, rec)
	s.mu.Unlock()
	for {
		c, err := s.awaitClient(ctx)
		var sa *packet.Suback
		if err == nil {
			sa, err = c.SubscribePacket(ctx, &packet.Subscribe{Properties: sp.Properties, Subscriptions: subs})
			var se *SubscribeError
			if err != nil && !errors.As(err, &se) && c.ended() && ctx.Err() == nil {
				continue // lost before the SUBACK: the next connection
			}
			if err == nil || se != nil {
				s.mu.Lock()
				rec.active = true
				s.mu.Unlock()
				if c.ended() {
					// Lost meanwhile: a new session may have been set up
					// without this record.
					continue
				}
			}
		}
		var refused []string
		for i := range subs {
			if !granted(sa, err, i) {
				undo(i)
				refused = append(refused, subs[i].Filter)
			}
		}
		if len(refused) > 0 {
			s.mu.Lock()
			rec.subs = slices.DeleteFunc(rec.subs, func(sub packet.Subscription) bool { return slices.Contains(refused, sub.Filter) })
			if len(rec.subs) == 0 {
				s.subs = slices.DeleteFunc(s.subs, func(r *subRecord) bool { return r == rec })
			}
			s.mu.Unlock()
		}
		return sa, err
	}
}

// Subscribe is SubscribeFunc without a handler: messages go to OnMessage
// (or to handlers registered for overlapping filters).
func (s *Session) Subscribe(ctx context.Context, subs ...packet.Subscription) (*packet.Suback, error) {
	return s.SubscribeFunc(ctx, nil, subs...)
}

// forget removes filter from the subscription record, and its handler.
func (s *Session) forget(filter string, handler bool) {
	if handler {
		s.router.Remove(filter)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.subs[:0]
	for _, r := range s.subs {
		r.subs = slices.DeleteFunc(r.subs, func(sub packet.Subscription) bool { return sub.Filter == filter })
		if len(r.subs) > 0 {
			out = append(out, r)
		}
	}
	clear(s.subs[len(out):])
	s.subs = out
}

// Unsubscribe forgets filters and their handlers and sends UNSUBSCRIBE,
// waiting for a connection if need be.
func (s *Session) Unsubscribe(ctx context.Context, filters ...string) (*packet.Unsuback, error) {
	return s.UnsubscribePacket(ctx, &packet.Unsubscribe{Filters: filters})
}

// UnsubscribePacket is Unsubscribe for an UNSUBSCRIBE of the caller's
// making (v5 user properties).
func (s *Session) UnsubscribePacket(ctx context.Context, u *packet.Unsubscribe) (*packet.Unsuback, error) {
	filters := u.Filters
	if len(filters) == 0 {
		return nil, errors.New("client: unsubscribe: no topic filters")
	}
	for _, f := range filters {
		s.forget(f, true)
	}
	for {
		c, err := s.awaitClient(ctx)
		if err != nil {
			return nil, err
		}
		ua, err := c.UnsubscribePacket(ctx, u)
		if err != nil && c.ended() && ctx.Err() == nil {
			continue
		}
		return ua, err
	}
}

// Disconnect waits until the queue is sent and acknowledged (or ctx ends),
// then sends DISCONNECT and ends the Session. Publishes still waiting fail
// with ErrClosed; with a Store their messages stay in it. The error is
// ctx's when the queue was not empty in time.
func (s *Session) Disconnect(ctx context.Context) error {
	return s.DisconnectWith(ctx, nil)
}

// DisconnectWith is Disconnect sending d (see Client.DisconnectWith). When
// ctx ends before the DISCONNECT is written, the connection is closed
// (the server publishes the will).
func (s *Session) DisconnectWith(ctx context.Context, d *packet.Disconnect) error {
	s.mu.Lock()
	s.closing = true
	emptied := s.emptied
	s.mu.Unlock()
	var err error
	select {
	case <-emptied:
	case <-ctx.Done():
		err = fmt.Errorf("client: disconnect with messages unsent: %w", ctx.Err())
	case <-s.done:
	}
	// The DISCONNECT may not get out (a server that stopped reading):
	// once ctx ends, the connection closes instead.
	cut := context.AfterFunc(ctx, func() {
		if c := s.Client(); c != nil {
			c.Close()
		}
	})
	defer cut()
	s.stop(nil, func(c *Client) bool {
		deferred, _ := c.disconnectOrDefer(d)
		return !deferred
	})
	return err
}

// Close ends the Session at once: the connection closes without
// DISCONNECT (the server publishes the will) and waiting publishes fail
// with ErrClosed; with a Store their messages stay in it.
//
// Close and Disconnect return once the Session has ended, except while a
// handler or one of the On* callbacks runs (they may be the caller): then
// they return at once, and Done tells when it has ended.
func (s *Session) Close() error {
	s.stop(ErrClosed, func(c *Client) bool { c.Close(); return true })
	return nil
}

// stop ends the connection loop, with end for the connection, and waits
// for it unless called from the loop's own callbacks or end reports that a
// handler in progress delays it (it may be the caller).
func (s *Session) stop(err error, end func(*Client) bool) {
	s.mu.Lock()
	s.closing = true
	first := !s.stopping
	s.stopping = true
	if first {
		s.err = err
		s.endConn = end
	}
	c := s.client
	wait := !s.inCallback
	s.mu.Unlock()
	s.cancel()
	if c != nil && first && !end(c) {
		wait = false
	}
	if wait {
		<-s.done
	}
}

// callback runs f, one of the callbacks, on the connection loop.
func (s *Session) callback(f func()) {
	s.mu.Lock()
	s.inCallback = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inCallback = false
		s.mu.Unlock()
	}()
	f()
}
