package broker

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// Idle connections cost no goroutine and no buffer.
//
// Most MQTT connections are idle most of the time, so what an idle one
// holds is what the broker's memory is made of. A goroutine waiting in a
// read costs at least 2 KB of stack, its read buffer more. So a
// connection whose input is handled parks: its reading goroutine exits
// and its buffer goes back to readerPool. Whatever comes first then
// starts a new goroutine (wake): the poller (poll_linux.go) when input
// or a hang-up arrives, the keep-alive wheel when the client's time is
// up, a close by the broker (closeWith, the writer), or a take-over. The
// goroutine borrows a buffer, handles the input, and parks the
// connection again.
//
// A TLS connection parks like a socket, the poller watching the socket
// under it, once TLS has nothing buffered either (tlsPending): input it
// read from the socket along with the last, still to decrypt, would be
// out of the poller's sight.
//
// Connections the poller cannot watch keep a goroutine that waits with a
// one-byte read and no buffer: WebSocket and PROXY-protocol connections
// (something in front of the socket buffers their input where no one can
// look), those served by ServeConn (which returns only once its
// connection has ended), and every connection on systems other than
// Linux.

// The reading side's states, and a flag.
const (
	reading   int32 = 0 // a goroutine reads the connection (or ended it)
	parked    int32 = 1 // nothing reads it: wake starts a goroutine
	takenOver int32 = 2 // flag: handle what has arrived, without waiting, then end (takeOver)
)

// errNoInput is readNow's: nothing more has arrived.
var errNoInput = errors.New("no input without waiting")

// readerPool holds the read buffers of the connections not parked.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// routerPool holds the routing scratch of the connections not parked.
var routerPool = sync.Pool{New: func() any { return new(router) }}

// borrowReader gives the reading side a buffer and routing scratch for a
// burst of input.
func (c *conn) borrowReader() {
	if c.br == nil {
		c.br = readerPool.Get().(*bufio.Reader)
		c.br.Reset(countingReader{c})
	}
	if c.router == nil {
		c.router = routerPool.Get().(*router)
		c.router.b = c.b // a pooled one may have routed for another broker
	}
}

// releaseReader gives them back; nothing may be buffered.
func (c *conn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
	if c.router != nil {
		routerPool.Put(c.router)
		c.router = nil
	}
}

// wake starts a goroutine to read a parked connection.
func (c *conn) wake() {
	for {
		v := c.rstate.Load()
		if v&parked == 0 {
			return
		}
		if c.rstate.CompareAndSwap(v, v&^parked) {
			go c.run()
			return
		}
	}
}

// run reads a connection woken from parking until it can park again.
func (c *conn) run() {
	for {
		if done, err := c.burst(); done {
			c.endReading(err)
			return
		}
		if c.park() {
			return
		}
	}
}

// park leaves a connection whose input is all handled to the poller, and
// reports whether it did; if not, the caller reads on: the connection
// cannot be parked, or was closed meanwhile. Only the reading goroutine
// calls it, and once it returns true, the connection is no longer that
// goroutine's.
func (c *conn) park() bool {
	if !c.pollable {
		return false
	}
	if c.keepAlive > 0 && !c.inWheel {
		// [MQTT-3.1.2-24] no goroutine watches the read deadline of a
		// parked connection: keepAlives wakes it once it has passed,
		// and the read that follows fails with the timeout.
		keepAlives.add(c)
		c.inWheel = true
	}
	c.idle()
	if !c.registered && c.register() != nil {
		// The kernel refused (fs.epoll.max_user_watches, say): the
		// connection keeps its goroutine, and tries again next time.
		return false
	}
	if !c.rstate.CompareAndSwap(reading, parked) {
		return false // taken over: the caller reads what has arrived, then ends
	}
	// Armed only now: input that came in the meantime wakes it at once
	// (arming looks at the socket as it is), and the wake-ups that found
	// it still reading were for input already handled, or for a close
	// that makes arming fail.
	if c.arm() != nil {
		return !c.rstate.CompareAndSwap(parked, reading)
	}
	return true
}

// endReading ends the connection after the last burst, for err, and
// forgets it.
func (c *conn) endReading(err error) {
	c.releaseReader()
	if c.inWheel {
		keepAlives.remove(c) // it holds the connection
	}
	c.end(err)
	c.unregister()
	c.b.forget(c)
}

// keepAliveWheel wakes parked connections whose keep-alive deadline has
// passed [MQTT-3.1.2-24]: a timer each would cost a connection some 140
// bytes, the wheel a slot in one of its buckets. A connection is in the
// bucket of the tick its deadline falls in (or the wheel's last, for a
// deadline beyond its span); when the tick has passed, a connection whose
// deadline has moved since goes to its new bucket, one whose deadline
// has passed is woken (if parked: a connection being read watches its
// read deadline itself) and looked at again a tick later. So a
// connection is woken at most two ticks late, never early, and costs the
// wheel about one look per keep-alive period.
type keepAliveWheel struct {
	mu      sync.Mutex
	slots   [wheelSlots][]*conn
	n       int   // connections in the wheel
	next    int64 // the tick to process next
	running bool  // a goroutine ticks; it stops when the wheel is empty
}

const (
	wheelTick  = 250 * time.Millisecond
	wheelSlots = 2048 // 512 s
)

var keepAlives keepAliveWheel

// keepAliveDue is when c's keep-alive deadline passes, in Unix ns.
func (c *conn) keepAliveDue() int64 {
	return c.deadlineAt.Load() + int64(c.keepAliveTime()*3/2)
}

// add puts c, which has a keep alive, in the wheel until remove.
func (w *keepAliveWheel) add(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		w.running = true
		w.next = time.Now().UnixNano() / int64(wheelTick)
		go w.run()
	}
	w.insert(c, c.keepAliveDue())
	w.n++
}

// insert puts c in the bucket of the first tick that ends after due,
// within the wheel's span. mu must be held.
func (w *keepAliveWheel) insert(c *conn, due int64) {
	t := due/int64(wheelTick) + 1
	t = min(max(t, w.next), w.next+wheelSlots-1)
	i := t % wheelSlots
	c.kaSlot, c.kaIndex = uint16(i)+1, int32(len(w.slots[i]))
	w.slots[i] = append(w.slots[i], c)
}

// remove takes c out of the wheel, if it is there.
func (w *keepAliveWheel) remove(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.kaSlot == 0 {
		return
	}
	i := c.kaSlot - 1
	s := w.slots[i]
	last := len(s) - 1
	s[c.kaIndex] = s[last]
	s[c.kaIndex].kaIndex = c.kaIndex
	s[last] = nil
	w.slots[i] = s[:last]
	if last == 0 {
		w.slots[i] = nil
	}
	c.kaSlot = 0
	w.n--
}

func (w *keepAliveWheel) run() {
	t := time.NewTicker(wheelTick)
	defer t.Stop()
	for range t.C {
		now := time.Now().UnixNano()
		w.mu.Lock()
		for ; w.next <= now/int64(wheelTick); w.next++ {
			i := w.next % wheelSlots
			due := w.slots[i]
			w.slots[i] = nil
			for _, c := range due {
				at := c.keepAliveDue()
				if at <= now {
					c.wake()
					at = now + int64(wheelTick)
				}
				w.insert(c, at)
			}
		}
		if w.n == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// tlsConn is a TLS connection (a *tls.Conn, or a listener's type around
// one).
type tlsConn interface {
	net.Conn
	NetConn() net.Conn
	ConnectionState() tls.ConnectionState
}

// isTLS reports whether c is a TLS connection.
func (c *conn) isTLS() bool {
	_, ok := c.nc.(tlsConn)
	return ok
}

// tlsPending reports whether the TLS layer of a connection to be parked
// holds input it has read from the socket: a record that came with the
// last one, which no poller would see. It reads with a deadline that
// has passed: TLS returns what it has buffered and fails on the socket
// at once (a timeout, which does not break the TLS connection). err is
// any other failure.
func (c *conn) tlsPending() (bool, error) {
	c.nc.SetReadDeadline(time.Unix(0, 1))
	_, err := c.br.Peek(1)
	// Back to the keep-alive deadline (one that passed meanwhile fails
	// the next read, as it should).
	if c.keepAlive == 0 {
		c.setReadDeadline(time.Time{})
	} else {
		c.setReadDeadline(time.Unix(0, c.deadlineAt.Load()).Add(c.keepAliveTime() * 3 / 2))
	}
	var ne net.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ne) && ne.Timeout():
		return false, nil
	}
	return false, err
}
