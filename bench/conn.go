package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/packet"
)

// benchConn is one lean MQTT connection of tern bench. The general client
// (package client) is built for applications: a goroutine and a decoded
// packet per message, channels, callbacks. A load generator that costs as
// much as the broker measures itself, so this one keeps the wire close:
//
//   - one reader goroutine, which frames packets itself, parses PUBLISH and
//     the acks in place in its bufio.Reader (no allocation per message) and
//     uses the packet codec only for the handshake;
//   - one bufio.Writer, which the publisher fills with a pre-encoded PUBLISH
//     (timestamp, sequence and packet id patched in) and flushes only when
//     it is about to wait, so a burst is one write;
//   - a subscriber's acks are written by its reader, flushed when the reader
//     has nothing more buffered, so they are batched the same way.
type benchConn struct {
	nc      net.Conn
	r       *bufio.Reader
	version byte
	scratch []byte // bodies larger than r's buffer

	wmu sync.Mutex // guards w
	w   *bufio.Writer

	pub *benchPub // set for a publisher: acks are its
	sub *benchSub // set for a subscriber: PUBLISHes are its

	serverRecvMax int // v5 CONNACK Receive Maximum: caps the publisher's window

	acksPending bool // the reader wrote acks not yet flushed; the reader's alone

	closing atomic.Bool   // we are ending it: a read error is expected
	done    chan struct{} // closed when the reader returns
	err     error         // why the reader returned; read after done
}

// Buffer sizes by role: a publisher writes much and reads acks, a
// subscriber the reverse; an idle connection (conn scenario) needs only
// room for a handshake, so that 100k of them stay cheap.
const (
	benchBufBig   = 64 << 10
	benchBufSmall = 4 << 10
	benchBufIdle  = 512
)

// benchDialTimeout bounds dial, CONNECT..CONNACK and SUBSCRIBE..SUBACK.
const benchDialTimeout = 10 * time.Second

// dialBench connects to target and completes the MQTT handshake. connCtx
// ends the connection's life (WebSocket), ctx only this call.
func dialBench(ctx, connCtx context.Context, cfg *config, target benchTarget, id string, rbuf, wbuf int) (*benchConn, error) {
	ctx, cancel := context.WithTimeout(ctx, benchDialTimeout)
	defer cancel()
	nc, err := target.dial(ctx, connCtx)
	if err != nil {
		return nil, err
	}
	c := &benchConn{nc: nc, r: bufio.NewReaderSize(nc, rbuf), w: bufio.NewWriterSize(nc, wbuf), version: cfg.level, done: make(chan struct{})}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	connect := &packet.Connect{ProtocolLevel: cfg.level, CleanStart: !cfg.persistent, KeepAlive: uint16(cfg.keepAlive), ClientID: id}
	if cfg.persistent && cfg.level == packet.V5 {
		never := uint32(0xFFFFFFFF) // without an expiry a v5 session ends with its connection
		connect.Properties.SessionExpiry = &never
	}
	if cfg.userSet {
		connect.UsernameFlag, connect.Username = true, cfg.username
	}
	if cfg.passSet {
		connect.PasswordFlag, connect.Password = true, []byte(cfg.password)
	}
	if cfg.level == packet.V5 {
		// Let the broker send as fast as it can; we ack everything at once.
		rm := uint16(65535)
		connect.Properties.ReceiveMaximum = &rm
	}
	if err := c.send(connect); err != nil {
		nc.Close()
		return nil, err
	}
	p, err := c.readPacket()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("got %s, want CONNACK", p.Type())
	}
	if ack.ReasonCode != 0 {
		nc.Close()
		return nil, fmt.Errorf("CONNACK refused: %s", reasonText(ack.ReasonCode, cfg.level))
	}
	if rm := ack.Properties.ReceiveMaximum; rm != nil {
		c.serverRecvMax = int(*rm)
	}
	return c, nil
}

// reasonText names a CONNACK/SUBACK code for the summary.
func reasonText(code packet.ReasonCode, version byte) string {
	if version != packet.V5 {
		return fmt.Sprintf("return code %d", code)
	}
	return fmt.Sprintf("reason code 0x%02X (%v)", byte(code), code)
}

// send encodes and flushes one packet; only for the handshake (it allocates).
func (c *benchConn) send(p packet.Packet) error {
	b, err := p.Append(nil, c.version)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	return c.w.Flush()
}

// readPacket decodes one packet with the codec; only for the handshake.
func (c *benchConn) readPacket() (packet.Packet, error) {
	return packet.ReadPacket(c.r, c.version, 0)
}

// subscribe subscribes to filter and waits for the SUBACK.
func (c *benchConn) subscribe(ctx context.Context, filter string, qos byte) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	}
	if err := c.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}); err != nil {
		return err
	}
	for {
		p, err := c.readPacket()
		if err != nil {
			return fmt.Errorf("waiting for SUBACK: %w", err)
		}
		if ack, ok := p.(*packet.Suback); ok {
			if len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] >= 0x80 {
				return fmt.Errorf("SUBSCRIBE %q refused: %v", filter, ack.ReasonCodes)
			}
			return nil
		}
		// Anything else before the SUBACK (a PINGRESP) is not ours to judge.
	}
}

// start clears the handshake deadline and runs the reader.
func (c *benchConn) start() {
	_ = c.nc.SetDeadline(time.Time{})
	go func() {
		c.err = c.readLoop()
		close(c.done)
	}()
}

// readLoop reads packets until the connection ends. It allocates only when
// a packet is larger than any seen before and than the read buffer.
func (c *benchConn) readLoop() error {
	for {
		if c.acksPending && c.r.Buffered() == 0 {
			// About to wait for the socket: whatever the last packet was
			// (a PINGRESP, a QoS 0 PUBLISH), the acks must leave now.
			c.acksPending = false
			c.wmu.Lock()
			err := c.w.Flush()
			c.wmu.Unlock()
			if err != nil {
				return err
			}
		}
		h, err := c.r.ReadByte()
		if err != nil {
			return err
		}
		rl, err := readRemaining(c.r)
		if err != nil {
			return err
		}
		body, peeked, err := c.body(rl)
		if err != nil {
			return err
		}
		if peeked {
			// Consume the body before handling it, so that Buffered tells
			// writeAck whether more packets wait. The bytes stay valid: the
			// buffer is refilled only by the next read.
			_, _ = c.r.Discard(rl) // cannot fail: Peek returned rl bytes
		}
		if err := c.handle(h, body); err != nil {
			return err
		}
	}
}

// readRemaining reads the fixed header's remaining length.
func readRemaining(r *bufio.Reader) (int, error) {
	var v, shift uint32
	for range 4 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, unexpected(err)
		}
		v |= uint32(b&0x7F) << shift
		if b < 0x80 {
			return int(v), nil
		}
		shift += 7
	}
	return 0, errors.New("malformed remaining length")
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// body returns the next rl bytes: in place in the reader's buffer when they
// fit (peeked: the caller discards them after use), else in scratch.
func (c *benchConn) body(rl int) (b []byte, peeked bool, err error) {
	if rl <= c.r.Size() {
		b, err = c.r.Peek(rl)
		return b, true, unexpected(err)
	}
	if cap(c.scratch) < rl {
		c.scratch = make([]byte, rl)
	}
	b = c.scratch[:rl]
	_, err = io.ReadFull(c.r, b)
	return b, false, unexpected(err)
}

// handle acts on one packet.
func (c *benchConn) handle(h byte, body []byte) error {
	t := packet.Type(h >> 4)
	switch t {
	case packet.PUBLISH:
		return c.onPublish(h, body)
	case packet.PUBACK, packet.PUBREC, packet.PUBCOMP, packet.PUBREL:
		if len(body) < 2 {
			return fmt.Errorf("%s of %d bytes", t, len(body))
		}
		id := uint16(body[0])<<8 | uint16(body[1])
		code := byte(0)
		if len(body) > 2 {
			code = body[2]
		}
		if t == packet.PUBREL {
			// [MQTT-4.3.3-11] answer PUBREL with PUBCOMP.
			return c.writeAck(byte(packet.PUBCOMP)<<4, id)
		}
		if c.pub == nil {
			return fmt.Errorf("unexpected %s", t)
		}
		c.pub.onAck(t, id, code)
		return nil
	case packet.PINGRESP:
		return nil
	case packet.DISCONNECT:
		if len(body) > 0 {
			return fmt.Errorf("broker sent DISCONNECT 0x%02X", body[0])
		}
		return errors.New("broker sent DISCONNECT")
	}
	return fmt.Errorf("unexpected %s", t)
}

// onPublish parses a PUBLISH in place, records it and acknowledges it.
func (c *benchConn) onPublish(h byte, body []byte) error {
	now := time.Now().UnixNano()
	qos := h >> 1 & 3
	if len(body) < 2 {
		return errors.New("PUBLISH too short")
	}
	off := 2 + (int(body[0])<<8 | int(body[1]))
	var id uint16
	if qos > 0 {
		off += 2
	}
	if off > len(body) {
		return errors.New("PUBLISH too short")
	}
	if qos > 0 {
		id = uint16(body[off-2])<<8 | uint16(body[off-1])
	}
	if c.version == packet.V5 {
		plen, n := packet.ConsumeVarint(body[off:])
		if n <= 0 || off+n+int(plen) > len(body) {
			return errors.New("PUBLISH properties malformed")
		}
		off += n + int(plen)
	}
	if c.sub != nil {
		c.sub.record(body[off:], now)
	}
	switch qos {
	case 1:
		return c.writeAck(byte(packet.PUBACK)<<4, id)
	case 2:
		return c.writeAck(byte(packet.PUBREC)<<4, id)
	}
	return nil
}

// writeAck writes a four-byte ack (PUBACK, PUBREC, PUBCOMP: v5 allows
// leaving out Success and the properties) and flushes once the reader has
// nothing more buffered, so a burst of messages costs one write of acks.
// Only subscribers' readers write; a publisher's reader hands PUBREL to
// its publisher, so that it never waits for a writer that waits for it.
func (c *benchConn) writeAck(h byte, id uint16) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.w.WriteByte(h)
	_ = c.w.WriteByte(2)
	_ = c.w.WriteByte(byte(id >> 8))
	c.acksPending = true
	return c.w.WriteByte(byte(id))
}

// ping sends PINGREQ unless someone is writing (which keeps the connection
// alive anyway); it never waits for the lock.
func (c *benchConn) ping() {
	if !c.wmu.TryLock() {
		return
	}
	defer c.wmu.Unlock()
	_ = c.w.WriteByte(byte(packet.PINGREQ) << 4)
	_ = c.w.WriteByte(0)
	_ = c.w.Flush()
}

// close sends DISCONNECT, closes the connection and waits for the reader.
func (c *benchConn) close() {
	c.closing.Store(true)
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.wmu.Lock()
	_ = c.w.WriteByte(byte(packet.DISCONNECT) << 4)
	_ = c.w.WriteByte(0)
	_ = c.w.Flush()
	c.wmu.Unlock()
	c.nc.Close()
	<-c.done
}

// lost reports why the connection ended early, or nil.
func (c *benchConn) lost() error {
	select {
	case <-c.done:
		if c.closing.Load() {
			return nil
		}
		if c.err == nil {
			return io.EOF
		}
		return c.err
	default:
		return nil
	}
}
