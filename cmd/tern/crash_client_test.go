package main

// Raw MQTT 3.1.1 clients for TestCrashKill9, written on the packet codec so
// that they keep session state across reconnects exactly as the spec asks
// [MQTT-4.4.0-1] and record everything the broker sends them.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/packet"
)

const (
	crashInflight     = 16                     // messages a publisher has unacknowledged at most
	crashRate         = 100.0                  // messages per second per publisher
	crashIOTimeout    = 5 * time.Second        // one write, or the wait for CONNACK
	crashReconnectFor = 15 * time.Second       // give up reconnecting after this long
	crashBackoffMax   = 200 * time.Millisecond // reconnect backoff cap
)

// errFinished ends a publisher's connection loop once everything it sent
// is acknowledged and completed.
var errFinished = errors.New("finished")

// mqttConn is one MQTT connection. Its owner is the only writer; a reader
// goroutine hands decoded packets over in.
type mqttConn struct {
	nc       net.Conn
	in       chan packet.Packet
	stop     chan struct{}
	done     chan struct{} // closed when the reader has stopped
	err      error         // why the reader stopped; read only after done
	buf      []byte
	stopCtx  func() bool
	stopOnce sync.Once
}

// dialMQTT connects to addr, sends cp and waits for an accepting CONNACK.
// Cancelling ctx closes the connection.
func dialMQTT(ctx context.Context, addr string, cp *packet.Connect) (*mqttConn, *packet.Connack, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	c := &mqttConn{nc: nc, in: make(chan packet.Packet), stop: make(chan struct{}), done: make(chan struct{})}
	c.stopCtx = context.AfterFunc(ctx, func() { nc.Close() })
	fail := func(err error) (*mqttConn, *packet.Connack, error) {
		c.stopCtx()
		nc.Close()
		return nil, nil, err
	}
	if err := c.send(cp); err != nil {
		return fail(fmt.Errorf("sending CONNECT: %w", err))
	}
	r := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(crashIOTimeout))
	p, err := packet.ReadPacket(r, packet.V311, 0)
	if err != nil {
		return fail(fmt.Errorf("waiting for CONNACK: %w", err))
	}
	nc.SetReadDeadline(time.Time{})
	ca, ok := p.(*packet.Connack)
	if !ok {
		return fail(fmt.Errorf("first packet is %s, want CONNACK", p.Type()))
	}
	if ca.ReasonCode != 0 {
		return fail(fmt.Errorf("CONNACK return code %d", ca.ReasonCode))
	}
	go func() {
		defer close(c.done)
		for {
			p, err := packet.ReadPacket(r, packet.V311, 0)
			if err != nil {
				c.err = err
				return
			}
			select {
			case c.in <- p:
			case <-c.stop:
				c.err = net.ErrClosed
				return
			}
		}
	}()
	return c, ca, nil
}

// connectRetry dials until a connection is accepted, with a small growing
// backoff, for at most crashReconnectFor.
func connectRetry(ctx context.Context, rng *rand.Rand, addr string, cp *packet.Connect) (*mqttConn, *packet.Connack, error) {
	start := time.Now()
	backoff := 10 * time.Millisecond
	for {
		c, ca, err := dialMQTT(ctx, addr, cp)
		if err == nil {
			return c, ca, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if time.Since(start) > crashReconnectFor {
			return nil, nil, fmt.Errorf("%s: no connection for %v: %w", cp.ClientID, crashReconnectFor, err)
		}
		if !crashSleep(ctx, backoff+time.Duration(rng.Int64N(int64(backoff)))) {
			return nil, nil, ctx.Err()
		}
		backoff = min(2*backoff, crashBackoffMax)
	}
}

func (c *mqttConn) send(p packet.Packet) error {
	var err error
	if c.buf, err = p.Append(c.buf[:0], packet.V311); err != nil {
		return err
	}
	c.nc.SetWriteDeadline(time.Now().Add(crashIOTimeout))
	_, err = c.nc.Write(c.buf)
	return err
}

// close closes the connection and waits for the reader to stop.
func (c *mqttConn) close() {
	c.stopCtx()
	c.nc.Close()
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// lost describes why the reader stopped; call after done is closed.
func (c *mqttConn) lost() error {
	if c.err == nil {
		return errors.New("connection lost")
	}
	return fmt.Errorf("connection lost: %w", c.err)
}

func crashSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func crashConnect(clientID string) *packet.Connect {
	return &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanStart: false, ClientID: clientID}
}

// msgKey names one application message: its publisher and sequence number.
type msgKey struct {
	pub string
	seq int
}

func (k msgKey) String() string { return k.pub + "#" + strconv.Itoa(k.seq) }

func crashPayload(k msgKey) []byte { return []byte(k.pub + " " + strconv.Itoa(k.seq)) }

func parseCrashPayload(b []byte) (msgKey, bool) {
	pub, seq, ok := strings.Cut(string(b), " ")
	n, err := strconv.Atoi(seq)
	return msgKey{pub, n}, ok && err == nil
}

// ---- publisher ----

const (
	awaitAck  byte = iota // PUBLISH sent, no PUBACK/PUBREC yet
	awaitComp             // QoS 2: PUBREL sent, no PUBCOMP yet
)

type pubMsg struct {
	seq   int
	id    uint16
	state byte
}

// publisher publishes numbered messages on its own topic from a persistent
// session and resends what is unacknowledged after every reconnect.
type publisher struct {
	name, clientID, topic, addr string
	qos                         byte
	epoch                       func() int // broker start count, for diagnostics

	mu          sync.Mutex
	sent        int    // messages produced: seq 1..sent
	acked       []bool // by seq-1: PUBACK or PUBREC received
	ackedN      int
	completed   int // QoS 2: PUBCOMP received
	inflight    []*pubMsg
	nextID      uint16
	connects    int
	resent      int      // PUBLISH or PUBREL resent after a reconnect
	sessionLost []string // reconnects answered with Session Present 0
	notes       []string // unexpected but tolerated packets
	err         error
}

func (p *publisher) run(ctx context.Context, rng *rand.Rand, stopProducing <-chan struct{}) {
	err := p.loop(ctx, rng, stopProducing)
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *publisher) loop(ctx context.Context, rng *rand.Rand, stopProducing <-chan struct{}) error {
	for {
		c, ca, err := connectRetry(ctx, rng, p.addr, crashConnect(p.clientID))
		if err != nil {
			return err
		}
		p.mu.Lock()
		if p.connects > 0 && !ca.SessionPresent {
			p.sessionLost = append(p.sessionLost, fmt.Sprintf("connect #%d (broker start #%d)", p.connects+1, p.epoch()))
		}
		p.connects++
		p.mu.Unlock()
		err = p.serve(ctx, c, stopProducing)
		c.close()
		if err == errFinished {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped before everything was acknowledged: %w", ctx.Err())
		}
	}
}

// serve runs one connection: resend what is unfinished, then publish and
// handle acknowledgements until the connection fails or all is done.
func (p *publisher) serve(ctx context.Context, c *mqttConn, stopProducing <-chan struct{}) error {
	p.mu.Lock()
	var resend []packet.Packet
	for _, m := range p.inflight {
		if m.state == awaitAck {
			resend = append(resend, p.publishPacket(m, true))
		} else {
			resend = append(resend, &packet.Pubrel{PacketID: m.id})
		}
	}
	p.resent += len(resend)
	p.mu.Unlock()
	// [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP, same id) and
	// PUBREL packets in their original order.
	for _, pk := range resend {
		if err := c.send(pk); err != nil {
			return err
		}
	}
	const tick = 20 * time.Millisecond
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	tokens := 1.0
	stopped := false
	select {
	case <-stopProducing:
		stopped = true
	default:
	}
	for {
		if stopped {
			p.mu.Lock()
			idle := len(p.inflight) == 0
			p.mu.Unlock()
			if idle {
				c.send(&packet.Disconnect{})
				return errFinished
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.lost()
		case <-stopProducing:
			stopped = true
			stopProducing = nil
		case pk := <-c.in:
			if err := p.handle(c, pk); err != nil {
				return err
			}
		case <-ticker.C:
			if stopped {
				continue
			}
			tokens = min(tokens+crashRate*tick.Seconds(), 8)
			for tokens >= 1 {
				pk := p.produce()
				if pk == nil {
					break
				}
				tokens--
				if err := c.send(pk); err != nil {
					return err
				}
			}
		}
	}
}

// produce makes the next message and puts it in flight, or returns nil
// when the window is full.
func (p *publisher) produce() packet.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.inflight) >= crashInflight {
		return nil
	}
	p.sent++
	p.acked = append(p.acked, false)
	m := &pubMsg{seq: p.sent, id: p.freeID()}
	p.inflight = append(p.inflight, m)
	return p.publishPacket(m, false)
}

// freeID returns a packet id not in flight. p.mu must be held.
func (p *publisher) freeID() uint16 {
	for {
		p.nextID++
		if p.nextID == 0 {
			p.nextID = 1
		}
		if !slices.ContainsFunc(p.inflight, func(m *pubMsg) bool { return m.id == p.nextID }) {
			return p.nextID
		}
	}
}

func (p *publisher) publishPacket(m *pubMsg, dup bool) *packet.Publish {
	return &packet.Publish{Dup: dup, QoS: p.qos, Topic: p.topic, PacketID: m.id, Payload: crashPayload(msgKey{p.name, m.seq})}
}

// find returns the index of the in-flight message with id. p.mu must be held.
func (p *publisher) find(id uint16) int {
	return slices.IndexFunc(p.inflight, func(m *pubMsg) bool { return m.id == id })
}

func (p *publisher) note(format string, args ...any) {
	if len(p.notes) < 20 {
		p.notes = append(p.notes, fmt.Sprintf(format, args...))
	}
}

func (p *publisher) handle(c *mqttConn, pk packet.Packet) error {
	p.mu.Lock()
	var reply packet.Packet
	switch pk := pk.(type) {
	case *packet.Puback:
		if i := p.find(pk.PacketID); i >= 0 && p.qos == 1 {
			p.ack(p.inflight[i])
			p.inflight = slices.Delete(p.inflight, i, i+1)
		} else {
			p.note("PUBACK for packet id %d not in flight (broker start #%d)", pk.PacketID, p.epoch())
		}
	case *packet.Pubrec:
		if i := p.find(pk.PacketID); i >= 0 && p.qos == 2 {
			p.ack(p.inflight[i])
			p.inflight[i].state = awaitComp
			reply = &packet.Pubrel{PacketID: pk.PacketID}
		} else {
			p.note("PUBREC for packet id %d not in flight (broker start #%d)", pk.PacketID, p.epoch())
		}
	case *packet.Pubcomp:
		if i := p.find(pk.PacketID); i >= 0 && p.inflight[i].state == awaitComp {
			p.completed++
			p.inflight = slices.Delete(p.inflight, i, i+1)
		} else {
			p.note("PUBCOMP for packet id %d not awaiting it (broker start #%d)", pk.PacketID, p.epoch())
		}
	case *packet.Publish: // nothing is subscribed; acknowledge anyway
		p.note("unexpected PUBLISH on %q", pk.Topic)
		switch pk.QoS {
		case 1:
			reply = &packet.Puback{PacketID: pk.PacketID}
		case 2:
			reply = &packet.Pubrec{PacketID: pk.PacketID}
		}
	case *packet.Pubrel:
		reply = &packet.Pubcomp{PacketID: pk.PacketID}
	default:
		p.note("unexpected %s", pk.Type())
	}
	p.mu.Unlock()
	if reply != nil {
		return c.send(reply)
	}
	return nil
}

// ack records m as acknowledged. p.mu must be held.
func (p *publisher) ack(m *pubMsg) {
	if !p.acked[m.seq-1] {
		p.acked[m.seq-1] = true
		p.ackedN++
	}
}

// pubResult is a publisher's state once it has stopped.
type pubResult struct {
	name                              string
	qos                               byte
	sent, ackedN, completed, inflight int
	acked                             []bool
	connects, resent                  int
	sessionLost, notes                []string
	err                               error
}

func (p *publisher) result() pubResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pubResult{p.name, p.qos, p.sent, p.ackedN, p.completed, len(p.inflight), slices.Clone(p.acked),
		p.connects, p.resent, slices.Clone(p.sessionLost), slices.Clone(p.notes), p.err}
}

// ---- subscriber ----

// delivery is one PUBLISH a subscriber received.
type delivery struct {
	key   msgKey
	qos   byte
	id    uint16
	dup   bool
	first bool // counts as a delivery: not a resend of a QoS 2 id awaiting PUBREL
	conn  int  // subscriber connection number
	epoch int  // broker start number
	at    time.Duration
}

func (d delivery) String() string {
	s := fmt.Sprintf("%s qos=%d id=%d dup=%v conn=#%d broker=#%d at=%v", d.key, d.qos, d.id, d.dup, d.conn, d.epoch, d.at.Round(time.Millisecond))
	if !d.first {
		s += " (suppressed: id awaiting PUBREL)"
	}
	return s
}

// subscriber is an exactly-once receiver on a persistent session that
// subscribes to filter once and goes offline now and then (never, if
// draining is set before it runs).
type subscriber struct {
	name, clientID, addr, filter string
	epoch                        func() int
	start                        time.Time
	draining                     atomic.Bool // stay connected from now on

	mu          sync.Mutex
	subscribed  bool
	subscribedC chan struct{} // closed after the first SUBACK
	connects    int
	offline     int               // times it went away on purpose
	pending     map[uint16]msgKey // QoS 2 ids PUBREC'd, PUBREL not yet seen
	log         []delivery        // every PUBLISH, in arrival order
	firsts      map[msgKey]int    // counted deliveries per message
	pubrels     int
	errs        []string
	err         error
}

func newSubscriber(name, addr, filter string, start time.Time, epoch func() int) *subscriber {
	return &subscriber{name: name, clientID: "crash-sub-" + name, addr: addr, filter: filter, start: start, epoch: epoch,
		subscribedC: make(chan struct{}), pending: map[uint16]msgKey{}, firsts: map[msgKey]int{}}
}

func (s *subscriber) run(ctx context.Context, rng *rand.Rand) {
	err := s.loop(ctx, rng)
	s.mu.Lock()
	if ctx.Err() == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *subscriber) loop(ctx context.Context, rng *rand.Rand) error {
	for {
		c, ca, err := connectRetry(ctx, rng, s.addr, crashConnect(s.clientID))
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.connects++
		if s.subscribed && !ca.SessionPresent {
			// The session was subscribed before; losing it loses messages.
			s.errs = append(s.errs, fmt.Sprintf("connect #%d (broker start #%d, at %v): CONNACK Session Present 0 for a session that exists; subscribing again",
				s.connects, s.epoch(), time.Since(s.start).Round(time.Millisecond)))
			s.subscribed = false
		}
		subscribe := !s.subscribed
		s.mu.Unlock()
		err = s.serve(ctx, c, rng, subscribe)
		c.close()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errOffline) {
			var pe protocolError
			if errors.As(err, &pe) {
				return err
			}
			continue // connection lost: reconnect at once
		}
		// Gone offline on purpose: stay away for a while.
		if !crashSleep(ctx, 200*time.Millisecond+time.Duration(rng.Int64N(int64(1300*time.Millisecond)))) {
			return nil
		}
	}
}

var errOffline = errors.New("went offline")

// protocolError is a broker answer the subscriber cannot carry on from.
type protocolError struct{ msg string }

func (e protocolError) Error() string { return e.msg }

func (s *subscriber) serve(ctx context.Context, c *mqttConn, rng *rand.Rand, subscribe bool) error {
	if subscribe {
		sub := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: s.filter, QoS: 2}}}
		if err := c.send(sub); err != nil {
			return err
		}
	}
	s.mu.Lock()
	conn := s.connects
	s.mu.Unlock()
	// Online for 0.5-2.5 s, then away, unless draining.
	online := time.NewTimer(500*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second))))
	defer online.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.lost()
		case <-online.C:
			if s.draining.Load() {
				continue
			}
			s.mu.Lock()
			s.offline++
			s.mu.Unlock()
			if rng.IntN(2) == 0 {
				c.send(&packet.Disconnect{})
			}
			return errOffline
		case pk := <-c.in:
			reply, err := s.handle(pk, conn)
			if err != nil {
				return err
			}
			if reply != nil {
				if err := c.send(reply); err != nil {
					return err
				}
			}
		}
	}
}

func (s *subscriber) handle(pk packet.Packet, conn int) (packet.Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch pk := pk.(type) {
	case *packet.Suback:
		if len(pk.ReasonCodes) != 1 || pk.ReasonCodes[0] != 2 {
			return nil, protocolError{fmt.Sprintf("SUBACK codes %v, want [2]", pk.ReasonCodes)}
		}
		if !s.subscribed {
			s.subscribed = true
			select {
			case <-s.subscribedC:
			default:
				close(s.subscribedC)
			}
		}
		return nil, nil
	case *packet.Publish:
		key, ok := parseCrashPayload(pk.Payload)
		if !ok {
			return nil, protocolError{fmt.Sprintf("PUBLISH on %q with payload %q", pk.Topic, pk.Payload)}
		}
		d := delivery{key: key, qos: pk.QoS, id: pk.PacketID, dup: pk.Dup, first: true, conn: conn,
			epoch: s.epoch(), at: time.Since(s.start)}
		var reply packet.Packet
		switch pk.QoS {
		case 1:
			reply = &packet.Puback{PacketID: pk.PacketID}
		case 2:
			// Exactly once: a QoS 2 id is delivered the first time only,
			// until its PUBREL [MQTT-4.3.3-2].
			if prev, ok := s.pending[pk.PacketID]; ok {
				d.first = false
				if prev != key {
					s.errs = append(s.errs, fmt.Sprintf("QoS 2 packet id %d reused for %v (dup=%v, broker start #%d) while %v awaits PUBREL: the broker started a new flow on an unreleased id, so %v is dropped",
						pk.PacketID, key, pk.Dup, d.epoch, prev, key))
				}
			} else {
				s.pending[pk.PacketID] = key
			}
			reply = &packet.Pubrec{PacketID: pk.PacketID}
		}
		if d.first {
			s.firsts[key]++
		}
		s.log = append(s.log, d)
		return reply, nil
	case *packet.Pubrel:
		s.pubrels++
		delete(s.pending, pk.PacketID)
		return &packet.Pubcomp{PacketID: pk.PacketID}, nil
	default:
		return nil, protocolError{fmt.Sprintf("unexpected %s", pk.Type())}
	}
}

// has reports whether every message in want has been delivered at least once.
func (s *subscriber) has(want []msgKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range want {
		if s.firsts[k] == 0 {
			return false
		}
	}
	return true
}

// subResult is a subscriber's state once it has stopped.
type subResult struct {
	name                       string
	connects, offline, pubrels int
	log                        []delivery
	errs                       []string
	err                        error
}

func (s *subscriber) result() subResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return subResult{s.name, s.connects, s.offline, s.pubrels, slices.Clone(s.log), slices.Clone(s.errs), s.err}
}
