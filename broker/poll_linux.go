//go:build linux

package broker

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// poller waits for input on parked connections (poll.go) with an epoll
// instance of its own. That instance is itself a descriptor the runtime's
// network poller watches, so the one goroutine that dispatches its events
// sleeps in the runtime like any reader, and no thread blocks in
// epoll_wait. Each connection is registered one-shot: an event disarms it
// until the goroutine it started has handled the input and parks it again.
type poller struct {
	f    *os.File // epfd, open for the process's life
	epfd int
	rc   syscall.RawConn // of f

	mu    sync.RWMutex
	conns []*conn // by descriptor; an event names a descriptor and the generation of its registration
}

// pollEvents wake a parked connection: input, the peer's FIN, and, always
// reported, errors and hang-ups.
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

var (
	pollerOnce sync.Once
	thePoller  *poller // nil if it could not be made: connections keep a goroutine each
	pollGen    atomic.Uint32
)

func sharedPoller() *poller {
	pollerOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return
		}
		// Non-blocking, so the runtime polls it (os.NewFile).
		f := os.NewFile(uintptr(fd), "tern-poller")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			return
		}
		thePoller = &poller{f: f, epfd: fd, rc: rc}
		go thePoller.loop()
	})
	return thePoller
}

// parkable returns what serves nc, and whether it can be parked: a TCP
// or unix socket as accepted, served through a sockConn
// (sockconn_linux.go), or TLS right on one (burst reads what TLS buffered
// before it parks: tlsPending). Not WebSocket or PROXY-protocol
// connections, whose input is buffered where no one can look.
func parkable(nc net.Conn) (net.Conn, bool) {
	if sharedPoller() == nil {
		return nc, false
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return newSockConn(nc), true
	}
	if tc, ok := nc.(tlsConn); ok {
		switch tc.NetConn().(type) {
		case *net.TCPConn, *net.UnixConn:
			return nc, true
		}
	}
	return nc, false
}

// control runs f on the descriptor of the socket the poller watches, as
// syscall.RawConn.Control does: the descriptor stays open meanwhile.
func (c *conn) control(f func(fd uintptr)) error {
	switch nc := c.nc.(type) {
	case *sockConn:
		return nc.Control(f)
	case tlsConn:
		rc, err := nc.NetConn().(syscall.Conn).SyscallConn()
		if err != nil {
			return err
		}
		return rc.Control(f)
	}
	return errors.ErrUnsupported
}

// idle lets a connection being parked leave the runtime's poller
// (sockConn.detach).
func (c *conn) idle() {
	if s, ok := c.nc.(*sockConn); ok {
		s.detach()
	}
}

// register adds c to the poller, disarmed: only arm makes an event
// (bar an error or hang-up, reported always, and once).
func (c *conn) register() error {
	p := thePoller
	var err error
	cerr := c.control(func(fd uintptr) {
		p.mu.Lock()
		if int(fd) >= len(p.conns) {
			p.conns = append(p.conns, make([]*conn, int(fd)+1-len(p.conns)+len(p.conns)/2)...)
		}
		p.conns[fd] = c
		c.pollFD, c.pollGen = int32(fd), pollGen.Add(1)
		if c.pollGen == 0 { // 0 is for no registration
			c.pollGen = pollGen.Add(1)
		}
		p.mu.Unlock()
		ev := syscall.EpollEvent{Events: syscall.EPOLLONESHOT, Fd: int32(fd), Pad: int32(c.pollGen)}
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil {
		err = cerr
	}
	if err != nil {
		c.unregister()
		return err
	}
	c.registered = true
	return nil
}

// arm has the poller wake c once input arrives, once. An error means it
// will not: the socket is closed, or the kernel refused.
func (c *conn) arm() error {
	var err error
	cerr := c.control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: pollEvents, Fd: c.pollFD, Pad: int32(c.pollGen)}
		err = syscall.EpollCtl(thePoller.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// unregister forgets c at the end of its connection. Closing the socket
// has taken it out of the epoll set; an event already on its way names a
// registration no connection has any more, and is ignored.
func (c *conn) unregister() {
	p := thePoller
	if p == nil || c.pollGen == 0 {
		return
	}
	p.mu.Lock()
	if int(c.pollFD) < len(p.conns) && p.conns[c.pollFD] == c {
		p.conns[c.pollFD] = nil
	}
	p.mu.Unlock()
}

func (p *poller) loop() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n := 0
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				k, err := syscall.EpollWait(int(fd), events, 0)
				if err == syscall.EINTR {
					continue
				}
				n = max(k, 0)
				return n > 0 // none: wait until the runtime sees the instance readable
			}
		})
		if err != nil {
			return // not while the process lives: the descriptor is never closed
		}
		for i := range events[:n] {
			ev := &events[i]
			var c *conn
			p.mu.RLock()
			if fd := int(ev.Fd); fd >= 0 && fd < len(p.conns) {
				if c = p.conns[fd]; c != nil && c.pollGen != uint32(ev.Pad) {
					c = nil
				}
			}
			p.mu.RUnlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

// readNow reads what has arrived on c's socket (not TLS), without
// waiting and whatever the read deadline: errNoInput once nothing has,
// or after lingerBytes (a client that keeps sending to a connection
// taken over is not served for ever).
func (c *conn) readNow(p []byte) (int, error) {
	x := c.rare()
	if x.drained >= lingerBytes {
		return 0, errNoInput
	}
	var n int
	var rerr error
	err := c.control(func(fd uintptr) {
		for {
			if n, rerr = syscall.Read(int(fd), p); rerr != syscall.EINTR {
				return
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errNoInput
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	x.drained += n
	return n, nil
}
