package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// disconnectLinger bounds how long Disconnect waits for the server to close
// the connection after DISCONNECT.
const disconnectLinger = time.Second

// Client is one MQTT connection. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	version byte
	conn    net.Conn
	br      *bufio.Reader
	w       connWriter
	connack *packet.Connack

	// Fixed after Connect: what the CONNACK allows (v5) and what we
	// promised in CONNECT.
	keepAlive       time.Duration // 0: none
	maxPacketSize   uint32        // the server's; 0: no limit
	maxQoS          byte
	retainAvailable bool
	quota           chan struct{} // a slot per outbound QoS 1/2 PUBLISH in flight
	inMaxSize       uint32        // ours, passed to ReadPacket; 0: no limit
	aliasMax        uint16        // our Topic Alias Maximum
	serverAliasMax  uint16        // the server's Topic Alias Maximum

	mu            sync.Mutex
	nextID        uint16
	pending       map[uint16]*flow   // outbound flows awaiting an answer
	received      map[uint16]bool    // inbound QoS 2 ids until PUBREL; true once PUBREC is sent
	ending        bool               // shutdown has run
	disconnecting bool               // Disconnect sent or is sending DISCONNECT
	endErr        error              // why the connection ended; nil after Disconnect
	disconnectPk  *packet.Disconnect // what Disconnect sends; nil: a plain one
	reauth        *reauth            // a re-authentication in progress

	aliases map[uint16]string // inbound topic aliases; reader goroutine only
	router  *Router           // SubscribeFunc's handlers
	req     requester

	pingOut bool      // a PINGREQ awaits its PINGRESP; guarded by mu
	pingAt  time.Time // when it was sent; guarded by mu

	lastRead atomic.Int64 // time.Since(w.start) when the last packet arrived

	inbox    inbox
	acks     ackQueue // Options.ManualAck: delivered messages awaiting Ack
	reserved int      // entries in pending reserved for a Session's resend (kind 0); guarded by mu

	closed     chan struct{} // closed when the connection starts to end
	readerDone chan struct{} // closed when the reader goroutine returns
	done       chan struct{} // closed when every goroutine has returned
	wg         sync.WaitGroup
}

// flow is an outbound PUBLISH (QoS 1 or 2), SUBSCRIBE or UNSUBSCRIBE
// awaiting its answer. The reader completes it by sending on done.
type flow struct {
	kind   packet.Type // PUBLISH, SUBSCRIBE or UNSUBSCRIBE; 0: an id reserved for a Session's resend
	qos    byte        // PUBLISH: 1 or 2
	n      int         // SUBSCRIBE, UNSUBSCRIBE: number of filters
	pubrel bool        // QoS 2: PUBREC received, PUBREL sent (a resend is a PUBREL)
	// done is handed the answer, or the connection's end (pk nil); it
	// must not block: the reader calls it.
	done func(result)
	// onPubrec, if set, is told that the flow reached PUBREL, and sends
	// the PUBREL with send when it is ready to.
	onPubrec func(send func())
}

type result struct {
	pk  packet.Packet
	err error
}

// Connect dials, sends CONNECT and waits for the CONNACK. ctx bounds only
// the connecting; cancelling it later does not affect the Client. A refusal
// returns a *ConnectError.
func Connect(ctx context.Context, o Options) (*Client, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	switch {
	case o.Dial != nil:
		conn, err = o.Dial(ctx)
	case o.URL != "":
		conn, err = dialURL(ctx, o.URL, o.TLSConfig, o.WebSocketHeader)
	default:
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", o.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := newClient(conn, o)
	if err := c.handshake(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	c.start()
	return c, nil
}

func newClient(conn net.Conn, o Options) *Client {
	c := &Client{
		opts:       o,
		version:    o.Version,
		conn:       conn,
		br:         bufio.NewReader(conn),
		pending:    make(map[uint16]*flow),
		received:   make(map[uint16]bool),
		closed:     make(chan struct{}),
		readerDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.w.init(conn, o.Version, o.Trace, o.WriteTimeout)
	c.inbox.init(o.InboxSize, o.InboxBytes, c.awaiting)
	c.router = o.router
	if c.router == nil {
		c.router = new(Router)
	}
	if o.received != nil {
		c.received = o.received
	}
	for _, id := range o.reserved {
		c.pending[id] = &flow{}
	}
	c.reserved = len(c.pending)
	if o.Version == packet.V5 {
		if p := o.Properties.MaximumPacketSize; p != nil {
			c.inMaxSize = *p
		}
		if p := o.Properties.TopicAliasMaximum; p != nil {
			c.aliasMax = *p
		}
	}
	return c
}

// handshake sends CONNECT and reads the CONNACK, within ctx.
func (c *Client) handshake(ctx context.Context) error {
	// The deadline moves into the past only once ctx has ended, so that
	// ctx.Err() tells a timeout of ours from the network's.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) error {
		stop()
		if ctx.Err() != nil {
			return fmt.Errorf("client: connect: %w", context.Cause(ctx))
		}
		return fmt.Errorf("client: connect: %w", err)
	}
	cp := c.opts.connectPacket()
	var ex AuthExchange
	if a := c.opts.Auth; a != nil {
		first, e, err := a.Start()
		if err != nil {
			return fail(fmt.Errorf("authentication: %w", err))
		}
		ex = e
		cp.Properties.AuthMethod, cp.Properties.AuthData = a.Method(), first
	}
	if err := c.w.write(ctx, cp, false); err != nil {
		return fail(err)
	}
	var ca *packet.Connack
	for ca == nil {
		pk, err := packet.ReadPacket(c.br, c.version, c.inMaxSize)
		if err != nil {
			return fail(fmt.Errorf("reading CONNACK: %w", err))
		}
		if c.opts.Trace != nil {
			c.opts.Trace(false, pk)
		}
		switch p := pk.(type) {
		case *packet.Connack:
			ca = p
		case *packet.Auth:
			// [MQTT-4.12.0-2] the server continues the exchange.
			if ex == nil || p.ReasonCode != packet.ContinueAuthentication {
				return fail(fmt.Errorf("unexpected AUTH %#x: %w", byte(p.ReasonCode), packet.ProtocolError))
			}
			out, err := c.authStep(ex, p)
			if err != nil {
				return fail(err)
			}
			if err := c.w.write(ctx, out, false); err != nil {
				return fail(err)
			}
		default:
			return fail(fmt.Errorf("server sent %s instead of CONNACK: %w", pk.Type(), packet.ProtocolError))
		}
	}
	if ex != nil && ca.ReasonCode == packet.Success {
		if err := ex.Finish(ca.Properties.AuthData); err != nil {
			return fail(fmt.Errorf("authentication: %w", err))
		}
	}
	if !stop() {
		return fail(ctx.Err())
	}
	c.conn.SetDeadline(time.Time{})
	c.w.deadline = time.Time{} // cleared: the next write sets it again
	if ca.ReasonCode != packet.Success {
		return &ConnectError{Version: c.version, Connack: ca}
	}
	if c.opts.CleanStart && ca.SessionPresent {
		// [MQTT-3.2.2-4] (MQTT 3.1.1 3.2.2.2 says the same) we have no
		// session state: close.
		return fmt.Errorf("client: connect: Session Present after Clean Start: %w", packet.ProtocolError)
	}
	c.connack = ca
	return nil
}

// start applies the CONNACK and starts the goroutines.
func (c *Client) start() {
	ca := c.connack
	c.keepAlive = time.Duration(c.opts.keepAliveSeconds()) * time.Second
	c.maxQoS = 2
	c.retainAvailable = true
	receiveMax := math.MaxUint16
	if c.version == packet.V5 {
		p := &ca.Properties
		if p.ServerKeepAlive != nil {
			// [MQTT-3.2.2-21] the server's keep alive replaces ours.
			c.keepAlive = time.Duration(*p.ServerKeepAlive) * time.Second
		}
		if p.ReceiveMaximum != nil && *p.ReceiveMaximum > 0 {
			receiveMax = int(*p.ReceiveMaximum)
		}
		if p.MaximumPacketSize != nil {
			c.maxPacketSize = *p.MaximumPacketSize
		}
		if p.MaximumQoS != nil {
			c.maxQoS = *p.MaximumQoS
		}
		if p.RetainAvailable != nil {
			c.retainAvailable = *p.RetainAvailable != 0
		}
		if p.TopicAliasMaximum != nil {
			c.serverAliasMax = *p.TopicAliasMaximum
		}
		if c.serverAliasMax > 0 && !c.opts.NoTopicAliases {
			c.w.setAliases(c.serverAliasMax, c.maxPacketSize)
		}
	}
	if !c.resumed() {
		// The server has no session: neither have we (MQTT 5.0 3.2.2.1.1).
		clear(c.received)
	}
	// [MQTT-3.3.4-7] at most Receive Maximum QoS 1 and 2 PUBLISH in flight.
	if m := c.opts.MaxInflight; m > 0 && m < receiveMax {
		receiveMax = m
	}
	c.quota = make(chan struct{}, receiveMax)
	c.w.lastWrite.Store(int64(time.Since(c.w.start)))
	c.lastRead.Store(c.w.lastWrite.Load())

	c.wg.Add(1)
	go c.readLoop()
	if c.keepAlive > 0 {
		c.wg.Add(1)
		go c.keepAliveLoop()
	}
	// Handlers may be added at any time, so the delivery goroutine always
	// runs.
	c.wg.Add(1)
	go c.deliverLoop()
	go func() {
		c.wg.Wait()
		close(c.done)
	}()
}

// resumed reports whether the server kept our session: Session Present,
// or for 3.1, which has no such flag, a connection without clean start.
func (c *Client) resumed() bool {
	if c.opts.CleanStart {
		return false
	}
	return c.connack.SessionPresent || c.version == packet.V31
}

// ended reports whether the connection has started to end.
func (c *Client) ended() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Connack returns the server's CONNACK. Before v5 its ReasonCode is the
// 3.1.1 return code (0).
func (c *Client) Connack() *packet.Connack { return c.connack }

// Done is closed when the connection has ended and the client's goroutines
// have returned, including an OnMessage call in progress.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is up and after Disconnect;
// otherwise why it ended: ErrClosed after Close, a *ReasonError for a v5
// DISCONNECT from the server, ErrKeepAliveTimeout, or the network or
// protocol error.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endErr
}

// closedErr is the error for an operation on an ended connection. mu must
// be held.
func (c *Client) closedErr() error {
	if c.endErr != nil {
		return c.endErr
	}
	return ErrClosed
}

// Subscribe sends one SUBSCRIBE for subs and returns the SUBACK. When the
// server refused some filters, the SUBACK comes with a *SubscribeError
// naming them (the others are subscribed); the SUBACK holds a code per
// filter, the granted QoS or a failure (IsFailure).
func (c *Client) Subscribe(ctx context.Context, subs ...packet.Subscription) (*packet.Suback, error) {
	return c.SubscribePacket(ctx, &packet.Subscribe{Subscriptions: subs})
}

// SubscribePacket is Subscribe for a SUBSCRIBE of the caller's making:
// with v5 properties (Subscription Identifier, user properties). Its
// PacketID is assigned; s is not modified.
func (c *Client) SubscribePacket(ctx context.Context, s *packet.Subscribe) (*packet.Suback, error) {
	subs := s.Subscriptions
	if len(subs) == 0 {
		return nil, errors.New("client: subscribe: no topic filters")
	}
	for i := range subs {
		if err := topic.ValidateFilter(subs[i].Filter); err != nil {
			return nil, fmt.Errorf("client: subscribe: %w", err)
		}
		if subs[i].QoS > 2 {
			return nil, fmt.Errorf("client: subscribe %q: QoS %d: %w", subs[i].Filter, subs[i].QoS, packet.MalformedPacket)
		}
	}
	pk, err := c.roundTrip(ctx, packet.SUBSCRIBE, len(subs), func(id uint16) packet.Packet {
		sp := *s
		sp.PacketID = id
		return &sp
	})
	sa, _ := pk.(*packet.Suback)
	if err == nil && sa != nil {
		err = subscribeError(sa, subs)
	}
	return sa, err
}

// Unsubscribe sends one UNSUBSCRIBE for filters and returns the UNSUBACK
// (with a reason code per filter in v5).
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) (*packet.Unsuback, error) {
	return c.UnsubscribePacket(ctx, &packet.Unsubscribe{Filters: filters})
}

// UnsubscribePacket is Unsubscribe for an UNSUBSCRIBE of the caller's
// making: with v5 user properties. Its PacketID is assigned; u is not
// modified.
func (c *Client) UnsubscribePacket(ctx context.Context, u *packet.Unsubscribe) (*packet.Unsuback, error) {
	filters := u.Filters
	if len(filters) == 0 {
		return nil, errors.New("client: unsubscribe: no topic filters")
	}
	for _, s := range filters {
		if err := topic.ValidateFilter(s); err != nil {
			return nil, fmt.Errorf("client: unsubscribe: %w", err)
		}
	}
	pk, err := c.roundTrip(ctx, packet.UNSUBSCRIBE, len(filters), func(id uint16) packet.Packet {
		up := *u
		up.PacketID = id
		return &up
	})
	ua, _ := pk.(*packet.Unsuback)
	if err == nil {
		for _, s := range filters {
			c.router.Remove(s)
		}
	}
	return ua, err
}

// register puts f under id, which must be free or reserved, or, with id
// 0, under a new identifier, and returns it.
func (c *Client) register(f *flow, id uint16) (uint16, error) {
	// After mu is released: a reader waiting for room in the inbox reads
	// on while an answer is awaited.
	defer c.inbox.wake()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ending || c.disconnecting {
		return 0, c.closedErr()
	}
	if id != 0 {
		old := c.pending[id]
		if old != nil && old.kind != 0 {
			return 0, fmt.Errorf("client: packet identifier %d in use", id)
		}
		if old != nil {
			c.reserved--
		}
		c.pending[id] = f
		return id, nil
	}
	// [MQTT-2.3.1-2] a new packet gets a currently unused identifier;
	// [MQTT-2.3.1-1] never 0.
	for range math.MaxUint16 {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, used := c.pending[c.nextID]; !used {
			c.pending[c.nextID] = f
			return c.nextID, nil
		}
	}
	return 0, ErrNoPacketID
}

// sendFlow sends the first packet of the flow registered under id. If p
// could not be encoded, the flow is dropped again. When ctx ends first,
// the packet is still sent and the flow goes on.
func (c *Client) sendFlow(ctx context.Context, id uint16, p packet.Packet) error {
	err := c.send(ctx, p)
	var ee *encodeError
	if err != nil && errors.As(err, &ee) {
		c.mu.Lock()
		f := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if f != nil && f.kind == packet.PUBLISH {
			<-c.quota
		}
	}
	return err
}

// roundTrip sends the SUBSCRIBE or UNSUBSCRIBE that pk makes for a new
// packet identifier and waits for the answer or for ctx to end.
func (c *Client) roundTrip(ctx context.Context, kind packet.Type, n int, pk func(id uint16) packet.Packet) (packet.Packet, error) {
	answer := make(chan result, 1)
	id, err := c.register(&flow{kind: kind, n: n, done: func(r result) { answer <- r }}, 0)
	if err != nil {
		return nil, err
	}
	if err := c.sendFlow(ctx, id, pk(id)); err != nil {
		return nil, err
	}
	select {
	case r := <-answer:
		return r.pk, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// send writes p; a write failure ends the connection. An encoding failure
// is returned as an *encodeError. When ctx ends first, send returns its
// error and p is still written.
func (c *Client) send(ctx context.Context, p packet.Packet) error {
	err := c.w.write(ctx, p, false)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && err == cerr {
		return err
	}
	var ee *encodeError
	if errors.As(err, &ee) {
		return fmt.Errorf("client: %w", err)
	}
	if !errors.Is(err, ErrClosed) {
		// The connection broke. (ErrClosed: Close or Disconnect is
		// already ending it.)
		c.shutdown(fmt.Errorf("client: write: %w", err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedErr()
}

// Disconnect sends DISCONNECT and closes the connection [MQTT-3.14.4-1];
// the server discards the will. Messages not yet handed to OnMessage are
// dropped. If an OnMessage call is in progress, Disconnect returns at once
// and the DISCONNECT follows that message's acknowledgement when the call
// returns; wait on Done to know the connection has ended.
func (c *Client) Disconnect() error {
	return c.DisconnectWith(nil)
}

// DisconnectWith is Disconnect with a DISCONNECT of the caller's making
// (v5: a reason code, such as packet.DisconnectWithWill to have the
// server publish the will, and properties: Session Expiry Interval,
// Reason String, user properties). Before v5 only the packet type is
// sent. nil is Disconnect.
func (c *Client) DisconnectWith(d *packet.Disconnect) error {
	_, err := c.disconnectOrDefer(d)
	return err
}

// disconnectOrDefer is DisconnectWith; deferred reports that an OnMessage
// call is in progress and the DISCONNECT follows it.
func (c *Client) disconnectOrDefer(d *packet.Disconnect) (deferred bool, err error) {
	if d == nil {
		d = &packet.Disconnect{}
	}
	c.mu.Lock()
	c.disconnectPk = d
	c.mu.Unlock()
	if c.inbox.stop(true) {
		return true, nil
	}
	return false, c.disconnect()
}

// disconnect sends DISCONNECT and closes.
func (c *Client) disconnect() error {
	c.mu.Lock()
	if c.ending || c.disconnecting {
		err := c.closedErr()
		c.mu.Unlock()
		return err
	}
	c.disconnecting = true
	pend := c.takePending()
	d := c.disconnectPk
	c.mu.Unlock()
	failFlows(pend, ErrClosed)
	if d == nil || c.version != packet.V5 {
		d = &packet.Disconnect{}
	}

	// [MQTT-3.14.4-2] nothing may follow DISCONNECT: last.
	if err := c.w.write(context.Background(), d, true); err != nil {
		err = fmt.Errorf("client: write: %w", err)
		c.mu.Lock()
		c.disconnecting = false
		c.mu.Unlock()
		c.shutdown(err)
		return err
	}
	// Closing a socket with unread input resets the connection, and a
	// reset can make the server lose the DISCONNECT and publish the will.
	// So half-close and give the server a moment to close its side.
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		t := time.NewTimer(disconnectLinger)
		select {
		case <-c.readerDone:
		case <-t.C:
		}
		t.Stop()
	}
	c.shutdown(nil)
	return nil
}

// Close closes the connection without DISCONNECT, so the server publishes
// the will. Messages not yet handed to OnMessage are dropped. Close does
// not wait for the goroutines; Done does.
func (c *Client) Close() error {
	c.inbox.stop(false)
	c.shutdown(ErrClosed)
	return nil
}

// shutdown ends the connection once, for err (nil once disconnecting),
// failing the flows in progress.
func (c *Client) shutdown(err error) {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return
	}
	c.ending = true
	if c.disconnecting {
		err = nil
	}
	c.endErr = err
	pend := c.takePending()
	c.mu.Unlock()

	c.opts.logger().Debug("mqtt connection ended", "error", err)
	close(c.closed)
	c.inbox.hangUp()
	c.w.close(ErrClosed)
	c.conn.Close()
	if err == nil {
		err = ErrClosed
	}
	failFlows(pend, err)
}

// takePending empties the flow table. mu must be held.
func (c *Client) takePending() map[uint16]*flow {
	p := c.pending
	c.pending = make(map[uint16]*flow)
	c.reserved = 0
	return p
}

// awaiting reports whether a flow awaits the server's answer. mu must not
// be held.
func (c *Client) awaiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > c.reserved
}

func failFlows(pend map[uint16]*flow, err error) {
	for _, f := range pend {
		if f.kind != 0 {
			f.done(result{err: err})
		}
	}
}
