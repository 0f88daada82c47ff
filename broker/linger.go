package broker

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Lingering close. When the broker ends a connection after a last packet
// (a refusing CONNACK, a DISCONNECT with a reason code) while the client
// is still sending, closing the socket at once makes the kernel answer
// the client's late data, or data still unread, with a reset: the
// client's next write fails with ECONNRESET, a client stack may discard
// what it had received, and what was still in our send queue is thrown
// away; either way the client never learns why. So, after the last
// packet is written, the writer half-closes (the client reads our packets,
// then EOF) and the reading side reads and discards input for a while
// before the full close.
//
// Each bound stops abuse: lingerTime, lingerBytes and maxLingering; past
// any of them the socket is closed as before. Taking over a session and
// shutting the broker down close at once, as they always did: the first
// must not wait on the old client, the second on any client.
const (
	// lingerTime is how long the client has to read our last packets
	// and close its end: many round trips, even on slow links, and short
	// against ConnectTimeout and flushTimeout.
	lingerTime = 2 * time.Second
	// lingerBytes is how much input is discarded at most: what a client
	// can have in flight when our FIN reaches it (its send buffer and our
	// receive buffer, 16 KiB and 128 KiB by default on Linux, plus a
	// window on the wire), with room to spare. A client that sends more
	// after being told to go is not listening.
	lingerBytes = 256 << 10
	// maxLingering bounds the connections lingering at once, process-wide
	// (one broker per process in practice), so that a flood of refused
	// connections holds at most this many sockets for lingerTime.
	maxLingering = 1024
)

// lingering counts the connections lingering now.
var lingering atomic.Int32

// halfClose shuts down the writing side of nc if it can (TCP, unix, TLS,
// and the listener's PROXY-protocol connections can; WebSocket cannot).
func halfClose(nc net.Conn) bool {
	cw, ok := nc.(interface{ CloseWrite() error })
	return ok && cw.CloseWrite() == nil
}

// linger discards input until the client closes its end, lingerTime
// passes, lingerBytes arrive or the connection is closed (shutdown, flush
// timeout). The reading side calls it once it has stopped reading
// packets, so that it is still the only reader.
func (c *conn) linger() {
	if lingering.Add(1) > maxLingering {
		lingering.Add(-1)
		return
	}
	defer lingering.Add(-1)
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	c.ob.mu.Lock()
	if c.ob.closed {
		c.ob.mu.Unlock()
		return
	}
	c.ob.lingering = true
	c.ob.mu.Unlock()
	// A shutdown that saw ob.lingering false has closed stop before:
	// ob.mu orders the two.
	select {
	case <-c.b.stop:
		return
	default:
	}
	io.CopyN(io.Discard, c.nc, lingerBytes) // ends on EOF, deadline or close alike
}

// stopLingering closes the connection if it is lingering.
func (c *conn) stopLingering(err error) {
	c.ob.mu.Lock()
	l := c.ob.lingering
	c.ob.mu.Unlock()
	if l {
		c.closeWith(err)
	}
}
