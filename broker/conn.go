package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
)

// readBufferSize is small on purpose: most MQTT packets are small, larger
// bodies are read straight into their own buffer, and the memory budget
// per idle connection is a few KB.
const readBufferSize = 512

// flushTimeout bounds how long a closing connection may take to write its
// last packets.
const flushTimeout = 5 * time.Second

// conn is one client network connection.
type conn struct {
	b  *Broker
	nc net.Conn
	br *bufio.Reader

	// Set during CONNECT, read-only afterwards; version is also read by
	// Close from another goroutine, so it is written under ob.mu.
	version   byte
	clientID  string
	client    auth.Client
	keepAlive time.Duration
	sess      *session
	maxOut    int               // v5 client's Maximum Packet Size; 0: no limit
	aliases   outAliases        // v5 server-to-client topic aliases; under ob.mu
	inAliases map[uint16]string // v5 client-to-server topic aliases
	// v5 enhanced authentication: the method the connection was
	// authenticated with, and a re-authentication in progress.
	authMethod string
	reauth     auth.Exchange
	// v5 Session Expiry Interval from CONNECT (nil: absent), which
	// DISCONNECT may change but not from 0 [MQTT-3.14.2-2].
	sessionExpiry *uint32

	// Inbound rate limits; the reader goroutine's alone.
	msgRate, byteRate bucket
	bytesIn           int // read from nc since the last throttle

	will         *packet.Will // cleared by DISCONNECT [MQTT-3.1.2-10]
	disconnected bool         // the client sent DISCONNECT
	router       router

	ob      outbox
	flushed chan struct{} // closed once a finishing connection is flushed
	done    chan struct{} // closed when the connection is fully cleaned up

	errOnce   sync.Once
	closeErr  error // the first reason the connection ended
	closeOnce sync.Once
}

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{
		b: b, nc: nc,
		flushed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.br = bufio.NewReaderSize(countingReader{c}, readBufferSize)
	return c
}

// countingReader counts the bytes a connection reads, for ByteRate.
type countingReader struct{ c *conn }

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.c.nc.Read(p)
	r.c.bytesIn += n
	return n, err
}

// closeWith closes the network connection at once; err is why.
func (c *conn) closeWith(err error) {
	c.setErr(err)
	c.closeOnce.Do(func() {
		c.ob.mu.Lock()
		c.ob.closed = true
		c.ob.mu.Unlock()
		c.nc.Close()
	})
}

func (c *conn) setErr(err error) {
	c.errOnce.Do(func() { c.closeErr = err })
}

// takeOver ends the connection because another one claimed its session.
func (c *conn) takeOver() {
	c.finishWith(errTakenOver, packet.SessionTakenOver)
}

// shutdown ends the connection because the broker stops.
func (c *conn) shutdown() {
	c.finishWith(errShutdown, packet.ServerShuttingDown)
}

// finishWith flushes, tells a v5 client why with DISCONNECT, and closes.
func (c *conn) finishWith(err error, code packet.ReasonCode) {
	c.setErr(err)
	c.finish(&packet.Disconnect{ReasonCode: code, Properties: packet.Properties{ReasonString: err.Error()}})
}

func (c *conn) setVersion(v byte) {
	c.ob.mu.Lock()
	c.version = v
	c.ob.mu.Unlock()
}

func (c *conn) serve() {
	err := c.run()
	// A v5 client is told why the server ends its connection
	// [MQTT-4.13.2-1]: malformed packet, protocol error, too large, ...
	var code packet.ReasonCode
	if c.sess != nil && c.version == packet.V5 && !c.disconnected && errors.As(err, &code) && code.IsFailure() {
		c.finishWith(err, code)
	}
	c.cleanup(err)
}

// run reads and handles packets until the connection ends; it returns why.
func (c *conn) run() error {
	// [MQTT-3.1.0-1] CONNECT first, within ConnectTimeout.
	c.nc.SetReadDeadline(time.Now().Add(c.b.opts().ConnectTimeout))
	pk, err := packet.ReadPacket(c.br, 0, c.b.opts().MaxPacketSize)
	if err != nil {
		if cp, ok := pk.(*packet.Connect); ok && errors.Is(err, packet.UnsupportedProtocolVersion) {
			// [MQTT-3.1.2-2] answer an unknown level with return code 1,
			// in the 3.1.1 format since the client's is unknown.
			c.setVersion(packet.V311)
			c.finish(&packet.Connack{ReasonCode: packet.RefusedProtocolVersion})
			return fmt.Errorf("protocol level %d: %w", cp.ProtocolLevel, err)
		}
		return err
	}
	cp, ok := pk.(*packet.Connect)
	if !ok {
		return fmt.Errorf("first packet is %s, not CONNECT: %w", pk.Type(), packet.ProtocolError)
	}
	if err := c.connect(cp); err != nil {
		return err
	}

	var deadlineAt time.Time
	if c.keepAlive == 0 {
		c.nc.SetReadDeadline(time.Time{})
	}
	for {
		if c.keepAlive > 0 {
			// [MQTT-3.1.2-24] no packet within 1.5 x keep alive: close.
			// Moving the deadline costs a timer update, so under a flood
			// of packets it moves at most once a millisecond: the client
			// is given 1.5 x keep alive, less at most that millisecond.
			if now := time.Now(); now.Sub(deadlineAt) >= time.Millisecond {
				deadlineAt = now
				c.nc.SetReadDeadline(now.Add(c.keepAlive * 3 / 2))
			}
		}
		pk, err := packet.ReadPacket(c.br, c.version, c.b.opts().MaxPacketSize)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("no packet within 1.5 x keep alive (%s): %w", c.keepAlive, packet.KeepAliveTimeout)
			}
			return err
		}
		if err := c.handle(pk); err != nil {
			return err
		}
		if c.disconnected {
			// What is queued goes out before the close: a client may send
			// DISCONNECT right behind CONNECT or PUBLISH without waiting
			// for their answers (MQTT 3.1.4).
			c.finish(nil)
			return nil
		}
		if o := c.b.opts(); o.MessageRate > 0 || o.ByteRate > 0 {
			msgs := 0
			if pk.Type() == packet.PUBLISH {
				msgs = 1
			}
			c.throttle(msgs, c.bytesIn)
			c.bytesIn = 0
		}
	}
}

// cleanup runs once the connection has ended.
func (c *conn) cleanup(err error) {
	c.ob.mu.Lock()
	closing := c.ob.closing
	c.ob.mu.Unlock()
	if closing {
		select {
		case <-c.flushed:
		case <-time.After(flushTimeout):
		}
	}
	c.closeWith(err)
	err = c.closeErr
	if c.sess != nil {
		// DISCONNECT cleared the will unless v5 reason 0x04.
		will, delay := c.willMessage()
		c.b.detach(c, will, delay)
		for _, h := range c.b.hooks.disconnect {
			h.OnDisconnect(&c.client, err)
		}
		c.b.stats.connections.Add(-1)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.b.log.Debug("connection closed", "client", c.clientID, "remote", c.nc.RemoteAddr(), "err", err)
	} else {
		c.b.log.Debug("connection closed", "client", c.clientID, "remote", c.nc.RemoteAddr())
	}
	close(c.done)
}

// willMessage returns the will to publish [MQTT-3.1.2-8], if any and if
// the client may publish to its topic, with its v5 Will Delay Interval.
func (c *conn) willMessage() (*Message, time.Duration) {
	w := c.will
	if w == nil || !c.b.opts().Authorizer.Authorize(&c.client, auth.Publish, w.Topic) {
		return nil, 0
	}
	m := &Message{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain}
	setMessageProperties(m, &w.Properties, time.Now())
	var delay time.Duration
	if d := w.Properties.WillDelay; d != nil {
		delay = time.Duration(*d) * time.Second
	}
	return m, delay
}
