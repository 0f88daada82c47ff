package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
)

// readBufferSize is the buffer a connection borrows while it has input
// to handle (poll.go): larger bodies are read straight into their own
// buffer, and an idle connection holds none.
const readBufferSize = 4096

// flushTimeout bounds how long a closing connection may take to write its
// last packets.
const flushTimeout = 5 * time.Second

// conn is one client network connection. Most connections are idle most
// of the time, so its size counts: small fields are kept together, and
// what few connections use is in x.
type conn struct {
	b  *Broker
	nc net.Conn

	// The reading side (poll.go): a buffer and routing scratch borrowed
	// while input is being handled, and a byte read while waiting
	// without them. rstate says whether a goroutine reads the connection
	// or it is parked; pollable says the poller can watch its socket
	// (control; false: a goroutine waits for input), registered there
	// since the first park as pollFD and pollGen; kaSlot and kaIndex
	// place it in keepAlives (kaSlot 0: not there), under keepAlives.mu,
	// and inWheel says it is there, for the reading side. bytesIn is
	// what was read for the packet in hand (throttle), the reading side's.
	br         *bufio.Reader
	router     *router
	rstate     atomic.Int32
	pollFD     int32
	pollGen    uint32
	kaIndex    int32
	bytesIn    int32
	kaSlot     uint16
	peek       [1]byte
	pollable   bool
	peeked     bool
	registered bool
	inWheel    bool

	// Set during CONNECT, read-only afterwards; version is also read by
	// Close from another goroutine, so it is written under ob.mu.
	version byte
	// refusal is why CONNECT was not accepted, counted once reading
	// CONNECT ends (readConnect); the reading side's.
	refusal      refusal
	disconnected bool   // the client sent DISCONNECT; the reading side's
	keepAlive    uint16 // seconds; keepAliveTime
	clientID     string
	// client is who the client is. It is shared with the session and read
	// by other connections' routing, so it is never changed in place.
	client  *auth.Client
	sess    *session
	maxOut  int        // v5 client's Maximum Packet Size; 0: no limit
	aliases outAliases // v5 server-to-client topic aliases; under ob.mu
	// announced are the options in force at CONNECT: what the CONNACK
	// announced from them (Maximum Packet Size, Receive Maximum, Topic
	// Alias Maximum, the availability flags) holds for the connection
	// whatever a reload changes; limits that are not
	// negotiated, authorization and users come from b.opts(), live.
	announced *Options
	// v5 Session Expiry Interval from CONNECT (nil: absent), which
	// DISCONNECT may change but not from 0 [MQTT-3.14.2-2].
	sessionExpiry *uint32
	// connectedAt is when CONNECT was accepted, in Unix ns: the reading
	// side's until CONNACK, read-only afterwards.
	connectedAt int64
	// Bytes read from and written to nc, for ClientInfo.
	bytesRead, bytesWritten atomic.Int64

	// The reading side's alone (serve and its bursts, one at a time):
	// when the keep-alive deadline last moved (written by it alone), and
	// what is rarely needed.
	deadlineAt atomic.Int64 // Unix ns; keepAlives reads it
	x          *connRare

	will *packet.Will // cleared by DISCONNECT [MQTT-3.1.2-10]

	ob      outbox
	flushed chan struct{} // closed once a finishing connection is flushed; made by finishLast, under ob.mu
	done    chan struct{} // closed when the connection is fully cleaned up; made by ended, under ob.mu
	// closeErr is the first reason the connection ended; under ob.mu.
	closeErr error
}

// connRare is the reading side's state that few connections need, made
// on first use.
type connRare struct {
	msgRate, byteRate bucket            // inbound rate limits
	inAliases         map[uint16]string // v5 client-to-server topic aliases
	reauth            auth.Exchange     // a v5 re-authentication in progress
	drained           int               // bytes readNow read
	// authMethod is the v5 enhanced authentication method the connection
	// was authenticated with.
	authMethod string
}

// rare returns the connection's rarely needed state. Only the reading side
// calls it.
func (c *conn) rare() *connRare {
	if c.x == nil {
		c.x = new(connRare)
	}
	return c.x
}

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{
		b: b, nc: nc,
		announced: b.opts(), // until CONNECT
	}
	return c
}

// keepAliveTime is the connection's keep alive (0: none).
func (c *conn) keepAliveTime() time.Duration {
	return time.Duration(c.keepAlive) * time.Second
}

// countingReader is what the read buffer reads from: the byte waitInput
// read first, if any, then the connection.
type countingReader struct{ c *conn }

func (r countingReader) Read(p []byte) (int, error) {
	c := r.c
	if !c.peeked || len(p) == 0 {
		return c.read(p)
	}
	c.peeked = false
	p[0] = c.peek[0]
	if len(p) == 1 {
		return 1, nil
	}
	// A packet is at least 2 bytes: the rest of this one is on its way.
	n, err := c.read(p[1:])
	return n + 1, err
}

// read reads from the connection and counts the bytes, for ByteRate and
// the statistics. A connection taken over reads only what has arrived.
func (c *conn) read(p []byte) (n int, err error) {
	if c.rstate.Load()&takenOver != 0 && !c.isTLS() {
		n, err = c.readNow(p)
	} else if n, err = c.nc.Read(p); n == 0 && err != nil && c.rstate.Load()&takenOver != 0 && !c.isTLS() {
		n, err = c.readNow(p) // takeOver cut a wait short
	}
	c.bytesIn += int32(n)
	if n > 0 {
		c.bytesRead.Add(int64(n))
		c.b.stats.bytesIn.Add(int64(n))
		if c.b.observer != nil && c.router != nil {
			// Once per read rather than per PUBLISH: reading the clock
			// costs tens of nanoseconds, or a system call.
			c.router.lastRead = monoNow()
		}
	}
	return n, err
}

// waitInput waits for input with no buffer: it reads one byte, for the
// read buffer to return first.
func (c *conn) waitInput() error {
	for {
		n, err := c.read(c.peek[:])
		if n == 1 {
			c.peeked = true
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// closeWith closes the network connection at once; err is why.
func (c *conn) closeWith(err error) {
	c.ob.mu.Lock()
	c.setErrLocked(err)
	if c.ob.ncClosed {
		c.ob.mu.Unlock()
		return
	}
	c.ob.ncClosed, c.ob.closed = true, true
	if t := c.ob.flushTimer; t != nil {
		// A pending timer would keep the closed connection, its
		// session and buffers live for flushTimeout.
		t.Stop()
		c.ob.flushTimer = nil
	}
	c.ob.mu.Unlock()
	c.nc.Close()
	c.wake() // a parked connection reads the close and ends
}

// setErr records err as why the connection ended, unless a reason (nil
// too) was recorded before.
func (c *conn) setErr(err error) {
	c.ob.mu.Lock()
	c.setErrLocked(err)
	c.ob.mu.Unlock()
}

// setErrLocked is setErr with ob.mu held.
func (c *conn) setErrLocked(err error) {
	if !c.ob.errSet {
		c.ob.errSet, c.closeErr = true, err
	}
}

// takeOver ends the connection because another one claimed its session.
// A connection the poller watches first handles what it has received
// already, and waits for nothing more: a client that acknowledged a
// message and reconnected at once must not get it again because its
// PUBACK was still in the old connection's socket. (TLS keeps what is in
// the socket out of reach without waiting: a TLS connection handles only
// what TLS has buffered.)
func (c *conn) takeOver() {
	if !c.pollable {
		c.finishWith(errTakenOver, packet.SessionTakenOver, false)
		return
	}
	c.rstate.Or(takenOver)
	// A read waiting for input gives up (read then reads without
	// waiting); a deadline the reading side sets after this is set before
	// it looks at the flag.
	c.nc.SetReadDeadline(time.Unix(0, 1))
	c.wake() // burst ends it, with errTakenOver
}

// shutdown ends the connection because the broker stops, and cuts short
// a lingering close.
func (c *conn) shutdown() {
	c.finishWith(errShutdown, packet.ServerShuttingDown, false)
	c.stopLingering(errShutdown)
}

// finishWith flushes, tells a v5 client why with DISCONNECT, and closes,
// lingering if asked (linger.go).
func (c *conn) finishWith(err error, code packet.ReasonCode, linger bool) {
	c.setErr(err)
	c.finishLast(&packet.Disconnect{ReasonCode: code, Properties: packet.Properties{ReasonString: err.Error()}}, linger)
}

func (c *conn) setVersion(v byte) {
	c.ob.mu.Lock()
	c.version = v
	c.ob.mu.Unlock()
}

// serveConn serves nc. With wait it returns once the connection has
// ended; without, once the connection is idle and parked (poll.go).
func (b *Broker) serveConn(nc net.Conn, wait bool) {
	pollable := false
	if !wait {
		nc, pollable = parkable(nc)
	}
	c := b.open(nc)
	if c == nil {
		return
	}
	c.pollable = pollable
	c.serve()
}

// serve reads and handles packets until the connection ends or parks.
//
// This goroutine only waits for input, and so stays at the smallest stack
// size: a goroutine that once grew deep (handling CONNECT, routing a
// PUBLISH) never shrinks back while parked in the network poller. Each
// burst of input is handled on a goroutine of its own, which grows as
// deep as it needs and exits when the input is handled.
func (c *conn) serve() {
	// [MQTT-3.1.0-1] CONNECT first, within ConnectTimeout.
	c.nc.SetReadDeadline(time.Now().Add(c.b.opts().ConnectTimeout))
	res := make(chan burstResult, 1)
	if tc, ok := c.nc.(interface{ HandshakeContext(context.Context) error }); ok {
		// A TLS handshake runs deep too. Its error, if any, comes back
		// from the first read; the read deadline bounds it.
		go func() {
			tc.HandshakeContext(context.Background())
			res <- burstResult{}
		}()
		<-res
	}
	for {
		if err := c.waitInput(); err != nil {
			c.endReading(c.whyEnded(c.readFailed(err)))
			return
		}
		go func() {
			done, err := c.burst()
			res <- burstResult{done, err}
		}()
		if r := <-res; r.done {
			c.endReading(r.err)
			return
		}
		if c.sess != nil && c.park() {
			return
		}
	}
}

type burstResult struct {
	done bool
	err  error
}

// end closes the connection, which ended for err.
func (c *conn) end(err error) {
	// A v5 client is told why the server ends its connection
	// [MQTT-4.13.2-1]: malformed packet, protocol error, too large, ...
	var code packet.ReasonCode
	if c.sess != nil && c.version == packet.V5 && !c.disconnected && errors.As(err, &code) && code.IsFailure() {
		c.finishWith(err, code, true)
	}
	c.cleanup(err)
}

// burst handles the input that has arrived, the first CONNECT included,
// with a borrowed read buffer: the packets buffered, and a packet only
// partly buffered read to its end. done reports that the connection
// ends, for err.
func (c *conn) burst() (done bool, err error) {
	defer func() {
		if done {
			err = c.whyEnded(err)
		}
	}()
	c.borrowReader()
	if _, err := c.br.Peek(1); err != nil {
		return true, c.readFailed(err)
	}
	if c.sess == nil {
		if err := c.readConnect(); err != nil {
			return true, err
		}
		c.setReadDeadline(time.Time{})
		c.moveDeadline()
	}
	for {
		for c.br.Buffered() > 0 {
			if done, err := c.step(); done {
				return true, err
			}
		}
		if !c.pollable || !c.isTLS() {
			break
		}
		if more, err := c.tlsPending(); err != nil {
			return true, c.readFailed(err)
		} else if !more {
			break
		}
	}
	c.moveDeadline() // the client's next packet is due from now
	c.releaseReader()
	return false, nil
}

// readConnect reads and handles the CONNECT [MQTT-3.1.0-1]. Its body
// counts against MaxPreAuthMemory until it is handled.
func (c *conn) readConnect() (err error) {
	pk, held, err := c.readPreAuth(0)
	defer c.b.releasePreAuth(held)
	defer func() { c.countRefusal(err) }()
	if err != nil {
		if cp, ok := pk.(*packet.Connect); ok && errors.Is(err, packet.UnsupportedProtocolVersion) {
			// [MQTT-3.1.2-2] answer an unknown level with return code 1,
			// in the 3.1.1 format since the client's is unknown.
			c.refused(refusedProtocolVersion)
			c.setVersion(packet.V311)
			c.finish(&packet.Connack{ReasonCode: packet.RefusedProtocolVersion})
			c.b.log.Info("connect refused", "client", cp.ClientID, "remote", c.nc.RemoteAddr().String(),
				"reason", fmt.Sprintf("unsupported protocol level %d", cp.ProtocolLevel))
			return fmt.Errorf("protocol level %d: %w", cp.ProtocolLevel, err)
		}
		return err
	}
	cp, ok := pk.(*packet.Connect)
	if !ok {
		return fmt.Errorf("first packet is %s, not CONNECT: %w", pk.Type(), packet.ProtocolError)
	}
	return c.connect(cp)
}

// refused notes why the connection is being refused, unless a reason
// was noted already: the first is the one the client is told.
func (c *conn) refused(r refusal) {
	if c.refusal == notRefused {
		c.refusal = r
	}
}

// countRefusal counts the refusal of a connection whose CONNECT was not
// accepted, for err. A CONNECT that breaks the protocol counts as other;
// a client that went away or a broker shutting down is no refusal.
func (c *conn) countRefusal(err error) {
	if err == nil {
		return
	}
	r := c.refusal
	var code packet.ReasonCode
	if r == notRefused && errors.As(err, &code) && !errors.Is(err, errShutdown) {
		r = refusedOther
	}
	if r != notRefused {
		c.b.stats.refused[r].Add(1)
	}
}

// moveDeadline gives the client 1.5 x keep alive from now for its next
// packet [MQTT-3.1.2-24]. It runs where the reading side may wait for
// the client: after CONNECT, before reading the rest of a packet not
// wholly buffered, and once a burst of input is handled. A packet read
// from the buffer needs no deadline: under a flood, reading the clock
// for each one cost more than handling a PUBACK. Moving the deadline
// costs a timer update, so it moves at most once a millisecond: the
// client is given 1.5 x keep alive, less at most that millisecond.
func (c *conn) moveDeadline() {
	if c.keepAlive == 0 {
		return
	}
	if now := time.Now(); now.UnixNano()-c.deadlineAt.Load() >= int64(time.Millisecond) {
		c.deadlineAt.Store(now.UnixNano())
		c.setReadDeadline(now.Add(c.keepAliveTime() * 3 / 2))
	}
}

// whyEnded returns why reading ended with err: a connection taken over
// (takeOver) ends once it has handled what had arrived, the first read
// that would wait failing.
func (c *conn) whyEnded(err error) error {
	if err == nil || c.rstate.Load()&takenOver == 0 {
		return err
	}
	c.finishWith(errTakenOver, packet.SessionTakenOver, false)
	return errTakenOver
}

// setReadDeadline sets the read deadline of the connection, unless it is
// taken over: then reads must not wait (takeOver sets a deadline that has
// passed after the flag, and this looks at the flag after setting it).
func (c *conn) setReadDeadline(t time.Time) {
	c.nc.SetReadDeadline(t)
	if c.rstate.Load()&takenOver != 0 {
		c.nc.SetReadDeadline(time.Unix(0, 1))
	}
}

// readFailed says why reading a packet failed.
func (c *conn) readFailed(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if c.sess == nil {
			return err
		}
		return fmt.Errorf("no packet within 1.5 x keep alive (%s): %w", c.keepAliveTime(), packet.KeepAliveTimeout)
	}
	return err
}

// step reads and handles one packet; done reports that the connection
// ends, for err.
func (c *conn) step() (done bool, err error) {
	if !c.packetBuffered() {
		c.moveDeadline()
	}
	// PUBLISH and acknowledgements are decoded into the borrowed scratch:
	// none is kept past handle.
	pk, err := packet.ReadPacketScratch(c.br, c.version, c.announced.MaxPacketSize, &c.router.read)
	if err != nil {
		return true, c.readFailed(err)
	}
	if err := c.handle(pk); err != nil {
		return true, err
	}
	if c.disconnected {
		// What is queued goes out before the close: a client may send
		// DISCONNECT right behind CONNECT or PUBLISH without waiting
		// for their answers (MQTT 3.1.4).
		c.finish(nil)
		return true, nil
	}
	n := int(c.bytesIn)
	c.bytesIn = 0
	if o := c.b.opts(); o.MessageRate > 0 || o.ByteRate > 0 {
		msgs := 0
		if pk.Type() == packet.PUBLISH {
			msgs = 1
		}
		c.throttle(msgs, n)
	}
	return false, nil
}

// packetBuffered reports whether the read buffer holds the whole of the
// next packet, so that reading it waits for nothing.
func (c *conn) packetBuffered() bool {
	n := c.br.Buffered()
	b, _ := c.br.Peek(min(n, 5)) // never reads: at most what is buffered
	if len(b) < 2 {
		return false
	}
	rl, k := packet.ConsumeVarint(b[1:])
	return k > 0 && 1+k+int(rl) <= n
}

// cleanup runs once the connection has ended. A connection the writer
// half-closed lingers last, once its session is detached, so that nothing
// waits on it.
func (c *conn) cleanup(err error) {
	c.ob.mu.Lock()
	closing, flushed := c.ob.closing, c.flushed
	c.ob.mu.Unlock()
	if closing {
		t := time.NewTimer(flushTimeout)
		select {
		case <-flushed:
		case <-t.C:
		}
		t.Stop()
	}
	c.setErr(err)
	c.ob.mu.Lock()
	linger := c.ob.halfClosed && !c.ob.closed
	c.ob.mu.Unlock()
	if !linger {
		c.closeWith(err)
	}
	c.ob.mu.Lock()
	err = c.closeErr
	c.ob.mu.Unlock()
	if c.sess != nil {
		// DISCONNECT cleared the will unless v5 reason 0x04.
		will, delay := c.willMessage()
		c.b.detach(c, will, delay)
		for _, h := range c.b.hooks.disconnect {
			h.OnDisconnect(c.client, err)
		}
		c.b.stats.connections.Add(-1)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.b.log.Debug("connection closed", "client", c.clientID, "remote", c.nc.RemoteAddr(), "err", err)
	} else {
		c.b.log.Debug("connection closed", "client", c.clientID, "remote", c.nc.RemoteAddr())
	}
	c.ob.mu.Lock()
	c.ob.ended = true
	done := c.done
	c.ob.mu.Unlock()
	if done != nil {
		close(done)
	}
	if linger {
		c.linger()
		c.closeWith(err)
	}
}

// ended returns a channel closed once the connection is fully cleaned up
// (its session detached, its will published). It is made only for who
// waits: most connections end with nobody waiting.
func (c *conn) ended() <-chan struct{} {
	c.ob.mu.Lock()
	defer c.ob.mu.Unlock()
	if c.done == nil {
		if c.ob.ended {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// willMessage returns the will to publish [MQTT-3.1.2-8], if any, with
// its v5 Will Delay Interval. It passes what any PUBLISH passes, now:
// topic limits, the ACL (which may have changed since CONNECT) and the
// publish hooks.
func (c *conn) willMessage() (*Message, time.Duration) {
	w := c.will
	if w == nil {
		return nil, 0
	}
	if err := c.b.topicLimits().Check(w.Topic); err != nil || !c.b.opts().Authorizer.Authorize(c.client, auth.Publish, w.Topic) {
		c.b.log.Debug("will not published: not authorized or beyond the topic limits", "client", c.clientID, "topic", w.Topic)
		return nil, 0
	}
	m := &Message{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain}
	setMessageProperties(m, &w.Properties, time.Now())
	if err := c.runPublishHooks(m); err != nil {
		c.b.log.Debug("will rejected by hook", "client", c.clientID, "topic", w.Topic, "err", err)
		return nil, 0
	}
	var delay time.Duration
	if d := w.Properties.WillDelay; d != nil {
		delay = time.Duration(*d) * time.Second
	}
	return m, delay
}
