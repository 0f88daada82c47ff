package client

import (
	"context"
	"errors"
	"fmt"
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
// returns only once its own bytes were written, or failed to be, or its
// context ended.
//
// Two bounds keep a peer that stops reading from holding callers: each
// conn.Write has a deadline timeout away (Options.WriteTimeout), and
// failing it ends the connection; and a caller whose context ends stops
// waiting, its packet staying queued. If that caller was the one in
// conn.Write, the write is cut short by a deadline in the past and what
// it had not written goes first in the next write, so the stream stays
// whole (over TLS or WebSocket a cut write breaks the connection, and
// the next write says so).
type connWriter struct {
	conn    net.Conn
	version byte
	trace   func(bool, packet.Packet)
	timeout time.Duration // bound of one conn.Write; 0: none
	start   time.Time     // the base of lastWrite
	aliases *aliasOut     // v5 outgoing topic aliases; nil: none. mu guards.

	mu      sync.Mutex
	flushed chan struct{} // made by a waiter, closed (and cleared) after the write in progress
	// The write deadline last set (zero: none, or to be set again) and
	// whether a context's end set it in the past; the flushing goroutine's.
	deadline    time.Time
	cutDeadline bool
	buf         []byte // encoded packets waiting for the next write
	spare       []byte // the previous write's buffer, for reuse
	queued      uint64 // bytes ever appended to buf
	written     uint64 // bytes ever written
	flushing    bool   // a goroutine is in conn.Write, mu released
	waiters     int    // callers waiting for another's write to end
	err         error  // sticky: the first write error
	shut        error  // set by close or after the last packet: later writes fail with it

	lastWrite atomic.Int64 // time.Since(start) at the end of the last write
}

func (w *connWriter) init(conn net.Conn, version byte, trace func(bool, packet.Packet), timeout time.Duration) {
	w.conn, w.version, w.trace = conn, version, trace
	w.timeout = max(timeout, 0)
	w.start = time.Now()
}

// encodeError is a packet that could not be encoded: nothing was sent and
// the connection is fine.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// write encodes p and returns once it is written, or when ctx ends: then
// it returns ctx's error and p is still written, after the packets queued
// before it. An encoding failure is an *encodeError. With last, writes
// after p fail with ErrClosed.
func (w *connWriter) write(ctx context.Context, p packet.Packet, last bool) error {
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
	// Runs before the Unlock: whoever leaves makes sure that what is
	// queued gets written.
	defer w.kick()
	for w.written < mine && w.err == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		if w.flushing {
			if w.flushed == nil {
				w.flushed = make(chan struct{})
			}
			ch := w.flushed
			w.waiters++
			w.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			}
			w.mu.Lock()
			w.waiters--
			continue
		}
		w.flush(ctx)
	}
	if w.written < mine {
		return w.err
	}
	return nil
}

// kick starts a goroutine writing what is queued when nobody else will:
// the callers who queued it stopped waiting. mu must be held.
func (w *connWriter) kick() {
	if w.flushing || w.waiters > 0 || len(w.buf) == 0 || w.err != nil {
		return
	}
	w.flushing = true // claimed for drain
	go w.drain()
}

func (w *connWriter) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushing = false
	for len(w.buf) > 0 && w.err == nil && !w.flushing {
		w.flush(context.Background())
	}
}

// flush writes everything buffered, or until ctx ends. mu must be held;
// it is released during the write.
func (w *connWriter) flush(ctx context.Context) {
	w.flushing = true
	out := w.buf
	w.buf = w.spare[:0]
	w.spare = nil
	w.mu.Unlock()
	w.setDeadline()
	var cut chan struct{} // closed once ctx's end has cut the write short
	stop := func() bool { return true }
	if ctx.Done() != nil {
		cut = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			w.conn.SetWriteDeadline(time.Unix(1, 0))
			close(cut)
		})
	}
	n, err := w.conn.Write(out)
	cutShort := false
	if !stop() {
		<-cut // the deadline is in the past: the next flush sets its own
		cutShort = err != nil
		w.deadline = time.Time{}
		w.cutDeadline = true
	}
	w.mu.Lock()
	w.flushing = false
	w.written += uint64(n)
	if cutShort && isTimeout(err) {
		// Our caller stopped waiting, not the peer: the rest goes first
		// in the next write.
		w.buf = append(append(make([]byte, 0, len(out)-n+len(w.buf)), out[n:]...), w.buf...)
		err = nil
	}
	if cap(out) <= maxSpare && w.spare == nil {
		w.spare = out[:0]
	}
	if err != nil {
		if w.err == nil {
			if isTimeout(err) {
				err = fmt.Errorf("write did not complete within the write timeout %s: %w", w.timeout, err)
			}
			w.err = err
		}
	} else if n == len(out) {
		w.lastWrite.Store(int64(time.Since(w.start)))
	}
	if w.flushed != nil {
		close(w.flushed)
		w.flushed = nil
	}
}

// setDeadline gives the coming write a deadline timeout away. Only the
// flushing goroutine calls it. Moving the deadline costs, so it moves only
// once half of the timeout has passed: a write has between half and all
// of timeout.
func (w *connWriter) setDeadline() {
	if w.timeout <= 0 {
		if w.cutDeadline {
			w.cutDeadline = false
			w.conn.SetWriteDeadline(time.Time{})
		}
		return
	}
	now := time.Now()
	if w.deadline.Sub(now) > w.timeout/2 {
		return
	}
	w.deadline = now.Add(w.timeout)
	w.conn.SetWriteDeadline(w.deadline)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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
