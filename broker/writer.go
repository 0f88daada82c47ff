package broker

import (
	"sync"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// Output buffers are pooled so that an idle connection holds none: a
// connection takes one when it has something to write and gives it back
// when its writer goes idle.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledBuf = 64 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// outbox is a connection's write side. Producers append encoded packets to
// out under mu; a writer goroutine, started on demand, swaps out for spare
// and writes everything pending in one syscall, so bursts coalesce.
type outbox struct {
	mu      sync.Mutex
	out     *[]byte
	spare   *[]byte
	writing bool     // a writer goroutine is running
	closing bool     // no more packets: close the connection once flushed
	closed  bool     // closed: discard everything
	sess    *session // set with the accepting CONNACK, for the writer to refill
	// durable is the store ticket everything in out waits for: an
	// acknowledgement leaves only once what it acknowledges is stored.
	durable store.Ticket
	// Lingering close (linger.go): linger asks the writer to half-close
	// once flushed rather than close, halfClosed says it did, lingering
	// that the reading side now drains input.
	linger, halfClosed, lingering bool
	// ncClosed: closeWith closed the connection; errSet: conn.closeErr
	// holds why it ended; ended: cleanup is done (conn.ended).
	ncClosed, errSet, ended bool
	// flushTimer closes a finishing connection that does not flush within
	// flushTimeout; it holds the connection, so closing stops it.
	flushTimer *time.Timer
}

// after holds back everything queued from now on until the store writes
// named by t are durable.
func (c *conn) after(t store.Ticket) {
	if t == 0 {
		return
	}
	c.ob.mu.Lock()
	c.ob.durable = max(c.ob.durable, t)
	c.ob.mu.Unlock()
}

// reserve returns the pending buffer for appending. mu must be held.
func (o *outbox) reserve() *[]byte {
	if o.out == nil {
		o.out = getBuf()
	}
	return o.out
}

// kick starts the writer if it is not running. mu must be held.
func (c *conn) kick() {
	if !c.ob.writing {
		c.ob.writing = true
		go c.writeLoop()
	}
}

// sendPacket encodes p for the connection's version and queues it.
// Control packets are never dropped; a client that lets them pile up past
// four times the write buffer limit is disconnected as too slow.
func (c *conn) sendPacket(p packet.Packet) {
	c.ob.mu.Lock()
	defer c.ob.mu.Unlock()
	if c.ob.closed || c.ob.closing {
		return
	}
	buf := c.ob.reserve()
	var err error
	if *buf, err = p.Append(*buf, c.version); err != nil {
		c.b.log.Error("encode failed", "client", c.clientID, "packet", p.Type(), "err", err)
		return
	}
	c.afterAppend()
}

// sendPublish queues an encoded PUBLISH of m (from encoder.bytes) with its
// flags and packet id patched in, and reports whether it did. QoS 0 is
// dropped when the write buffer is full: at-most-once allows it, and a
// slow client must not grow memory.
func (c *conn) sendPublish(m *Message, b []byte, qos byte, retain, dup bool, id uint16) bool {
	c.ob.mu.Lock()
	defer c.ob.mu.Unlock()
	if c.ob.closed || c.ob.closing || len(b) == 0 {
		return false
	}
	// The size check matches session.sendNew's, so a message counted in
	// flight is never dropped here.
	if !c.fits(len(b)) {
		c.b.dropped(c.client, m, DropTooLarge) // [MQTT-3.1.2-25]
		return false
	}
	buf := c.ob.reserve()
	if qos == 0 && len(*buf)+len(b) > c.b.opts().MaxWriteBuffer {
		c.b.dropped(c.client, m, DropSlow)
		return false
	}
	start := len(*buf)
	if c.aliases.max > 0 && c.fits(len(b)+maxAliasGrowth) {
		*buf = c.appendAliased(*buf, b, qos > 0)
	} else {
		*buf = append(*buf, b...)
	}
	p := (*buf)[start:]
	p[0] = byte(packet.PUBLISH)<<4 | qos<<1
	if retain {
		p[0] |= 0x01
	}
	if dup {
		p[0] |= 0x08
	}
	if qos > 0 {
		_, n := packet.ConsumeVarint(p[1:])
		i := 1 + n
		i += 2 + (int(p[i])<<8 | int(p[i+1])) // topic length and topic
		p[i], p[i+1] = byte(id>>8), byte(id)
	}
	c.b.stats.messagesOut[min(qos, 2)].Add(1)
	if qos > 0 {
		// Bounded by the in-flight window, and session.fill stops at a
		// full buffer: never a reason to drop the client.
		c.kick()
		return true
	}
	c.afterAppend()
	return true
}

// pending returns the bytes waiting to be written.
func (c *conn) pending() int {
	c.ob.mu.Lock()
	defer c.ob.mu.Unlock()
	if c.ob.out == nil {
		return 0
	}
	return len(*c.ob.out)
}

// fits reports whether a packet of n bytes may be sent to the client:
// larger ones are dropped as if delivered [MQTT-3.1.2-25].
func (c *conn) fits(n int) bool {
	return c.maxOut == 0 || n <= c.maxOut
}

// afterAppend starts the writer, or drops a client that reads nothing while
// its buffer grows. ob.mu must be held.
func (c *conn) afterAppend() {
	if len(*c.ob.out) > 4*c.b.opts().MaxWriteBuffer {
		c.ob.closed = true
		go c.closeWith(errSlowConsumer)
		return
	}
	c.kick()
}

// finish queues a last packet (nil for none) and closes the connection
// once everything queued has been written, lingering (linger.go). Only the
// reading side calls it, as its last act: the lingering close needs it to
// stop reading packets.
func (c *conn) finish(last packet.Packet) {
	c.finishLast(last, true)
}

// finishLast queues a last packet (nil for none) and closes the connection
// once everything queued has been written, or after flushTimeout: a client
// that reads nothing must not hold up a take-over or a shutdown. With
// linger, the writer half-closes instead and leaves the close to the
// reading side's cleanup.
func (c *conn) finishLast(last packet.Packet, linger bool) {
	c.ob.mu.Lock()
	defer c.ob.mu.Unlock()
	if c.ob.closed || c.ob.closing {
		return
	}
	// [MQTT-3.14.0-1] DISCONNECT only to v5 clients, and only after a
	// successful CONNACK.
	if _, ok := last.(*packet.Disconnect); ok && (c.version != packet.V5 || c.ob.sess == nil) {
		last = nil
	}
	if last != nil {
		buf := c.ob.reserve()
		start := len(*buf)
		var err error
		*buf, err = last.Append(*buf, c.version)
		if err == nil && !c.fits(len(*buf)-start) {
			// [MQTT-3.2.2-19] [MQTT-3.14.2-3] a Reason String is left out
			// rather than exceed the client's Maximum Packet Size.
			*buf = (*buf)[:start]
			clearReasonString(last)
			*buf, err = last.Append(*buf, c.version)
		}
		if err != nil {
			c.b.log.Error("encode failed", "client", c.clientID, "packet", last.Type(), "err", err)
		}
	}
	c.ob.closing = true
	c.flushed = make(chan struct{})
	c.ob.linger = linger
	c.kick()
	c.ob.flushTimer = time.AfterFunc(flushTimeout, func() { c.closeWith(errFlushTimeout) })
}

func clearReasonString(p packet.Packet) {
	switch p := p.(type) {
	case *packet.Connack:
		p.Properties.ReasonString = ""
	case *packet.Disconnect:
		p.Properties.ReasonString = ""
	}
}

func (c *conn) writeLoop() {
	for {
		c.ob.mu.Lock()
		if c.ob.closed || c.ob.out == nil || len(*c.ob.out) == 0 {
			c.ob.writing = false
			putBuf(c.ob.out)
			putBuf(c.ob.spare)
			c.ob.out, c.ob.spare = nil, nil
			closing, closed, linger, flushed := c.ob.closing, c.ob.closed, c.ob.linger, c.flushed
			c.ob.mu.Unlock()
			if closing {
				if !closed && linger && halfClose(c.nc) {
					c.ob.mu.Lock()
					c.ob.halfClosed = true
					c.ob.mu.Unlock()
				} else {
					c.nc.Close()
					c.wake() // a parked connection reads the close and ends
				}
				close(flushed)
			}
			return
		}
		buf := c.ob.out
		c.ob.out, c.ob.spare = c.ob.spare, nil
		durable := c.ob.durable
		c.ob.mu.Unlock()

		err := c.b.wait(durable) // on failure, what waited for it is never sent
		if err == nil {
			c.nc.SetWriteDeadline(time.Now().Add(c.b.opts().WriteTimeout))
			var n int
			n, err = c.nc.Write(*buf)
			c.bytesWritten.Add(int64(n))
			c.b.stats.bytesOut.Add(int64(n))
		}

		c.ob.mu.Lock()
		*buf = (*buf)[:0]
		if c.ob.spare == nil {
			c.ob.spare = buf
		} else {
			putBuf(buf)
		}
		s := c.ob.sess
		c.ob.mu.Unlock()
		if err != nil {
			c.closeWith(err) // the next turn releases the buffers
			continue
		}
		// Messages held back by a full buffer can go now.
		if s != nil {
			s.mu.Lock()
			if s.conn == c && (len(s.queue) > 0 || len(s.resend) > 0 || s.backlog != nil) {
				s.fill()
			}
			s.mu.Unlock()
		}
	}
}
