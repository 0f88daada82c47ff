package client

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/packet"
)

// maxSpare bounds the write buffer kept between writes, so that one large
// message does not pin its size for the life of the connection.
const maxSpare = 64 << 10

// connWriter serializes packets onto a connection and coalesces them: a
// packet sent while another goroutine is writing joins the next write, so a
// burst costs one syscall instead of one per packet. Every caller still
// returns only once its own bytes were written, or failed to be.
type connWriter struct {
	conn    net.Conn
	version byte
	trace   func(bool, packet.Packet)
	start   time.Time // the base of lastWrite
	aliases *aliasOut // v5 outgoing topic aliases; nil: none. mu guards.

	mu       sync.Mutex
	cond     sync.Cond // broadcast after each write; L is &mu
	buf      []byte    // encoded packets waiting for the next write
	spare    []byte    // the previous write's buffer, for reuse
	queued   uint64    // bytes ever appended to buf
	written  uint64    // bytes ever written
	flushing bool      // a goroutine is in conn.Write, mu released
	err      error     // sticky: the first write error
	shut     error     // set by close or after the last packet: later writes fail with it

	lastWrite atomic.Int64 // time.Since(start) at the end of the last write
}

func (w *connWriter) init(conn net.Conn, version byte, trace func(bool, packet.Packet)) {
	w.conn, w.version, w.trace = conn, version, trace
	w.start = time.Now()
	w.cond.L = &w.mu
}

// encodeError is a packet that could not be encoded: nothing was sent and
// the connection is fine.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// write encodes p and returns once it is written. An encoding failure is
// an *encodeError. With last, writes after p fail with ErrClosed.
func (w *connWriter) write(p packet.Packet, last bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shut != nil {
		return w.shut
	}
	if w.err != nil {
		return w.err
	}
	var commit func()
	if pub, ok := p.(*packet.Publish); ok && w.aliases != nil {
		p, commit = w.aliases.apply(pub)
	}
	if w.trace != nil {
		w.trace(true, p)
	}
	n := len(w.buf)
	b, err := p.Append(w.buf, w.version)
	if err != nil {
		w.buf = b[:n]
		return &encodeError{err}
	}
	if commit != nil {
		commit()
	}
	w.buf = b
	w.queued += uint64(len(b) - n)
	if last {
		w.shut = ErrClosed
	}
	mine := w.queued
	for w.written < mine && w.err == nil {
		if w.flushing {
			w.cond.Wait()
			continue
		}
		w.flush()
	}
	if w.written < mine {
		return w.err
	}
	return nil
}

// flush writes everything buffered. mu must be held; it is released during
// the write.
func (w *connWriter) flush() {
	w.flushing = true
	out := w.buf
	w.buf = w.spare[:0]
	w.spare = nil
	w.mu.Unlock()
	_, err := w.conn.Write(out)
	w.mu.Lock()
	w.flushing = false
	if cap(out) <= maxSpare && w.spare == nil {
		w.spare = out[:0]
	}
	if err != nil {
		if w.err == nil {
			w.err = err
		}
	} else {
		w.written += uint64(len(out))
		w.lastWrite.Store(int64(time.Since(w.start)))
	}
	w.cond.Broadcast()
}

// close makes every later write fail with err; packets already accepted
// are still written by their callers (unless the connection closes).
func (w *connWriter) close(err error) {
	w.mu.Lock()
	if w.shut == nil {
		w.shut = err
	}
	w.mu.Unlock()
}

// setAliases turns on outgoing topic aliases, up to max.
func (w *connWriter) setAliases(max uint16, maxPacket uint32) {
	w.mu.Lock()
	w.aliases = newAliasOut(max, maxPacket)
	w.mu.Unlock()
}

// sinceWrite is the time since the last completed write.
func (w *connWriter) sinceWrite() time.Duration {
	return time.Since(w.start) - time.Duration(w.lastWrite.Load())
}
