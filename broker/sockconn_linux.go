//go:build linux

package broker

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sockConn is a TCP or unix connection that leaves the runtime's network
// poller while it is idle. The runtime keeps a poll descriptor for every
// socket it watches, 512 bytes in memory it never returns to the system,
// and the net package a descriptor, two addresses and a finalizer: about
// 800 bytes of an idle connection's 2.8 KB. Our own poller watches a
// parked connection anyway (poll_linux.go), so sockConn holds a
// descriptor of its own for the socket (fd, which the poller watches),
// and the net.Conn (nc, on another descriptor) only while it is attached:
// from accept to the first park (detach), and, once detached, from a
// read or write that has to wait (the socket has nothing to read, or no
// room to write: attach) to the next park of a connection that has not
// waited for a second (so that a busy connection does not attach and
// detach on every burst). Reads and writes that need not wait are
// non-blocking system calls on fd, as the runtime's would be; nc and its
// deadlines do the waiting.
type sockConn struct {
	// mu is read-locked around each system call on fd (so that Close
	// cannot close it, and the number be reused, meanwhile) and around
	// the start of a call on nc; locked to attach, detach and close.
	mu    sync.RWMutex
	nc    net.Conn // nil while detached
	raddr net.Addr
	// rdl and wdl are the deadlines, Unix ns (0: none): nc has them too
	// while attached, a call on fd checks them first.
	rdl, wdl atomic.Int64
	// attachedAt is when attach last made nc (Unix ns; under mu).
	attachedAt int64
	busy       atomic.Int32 // calls in nc
	// fd is the socket's descriptor the poller watches; -1 until the
	// first detach, -2 if it could not be made (nc stays for good).
	fd     int32
	idle   atomic.Bool // nc goes once no call is in it (detach)
	closed bool        // under mu
}

// detachAfter is how long a connection must not have waited in a read or
// a write (attach) for a park to detach it.
const detachAfter = time.Second

// newSockConn wraps nc, a *net.TCPConn or *net.UnixConn.
func newSockConn(nc net.Conn) *sockConn {
	return &sockConn{nc: nc, raddr: nc.RemoteAddr(), fd: -1}
}

// detach is for a connection being parked: it lets go of nc once no call
// is in it, unless a call waited in the last detachAfter.
func (s *sockConn) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.nc == nil {
		return
	}
	if s.fd == -1 {
		// The poller registers the descriptor made here at the first
		// park, and keeps it: if none can be made, nc stays.
		nfd := -2
		if rc, err := s.nc.(syscall.Conn).SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if d, err := dupCloexec(int(fd)); err == nil {
					nfd = d
				}
			})
		}
		s.fd = int32(nfd)
	}
	if s.fd < 0 || time.Now().UnixNano()-s.attachedAt < int64(detachAfter) {
		return
	}
	s.idle.Store(true)
	s.releaseLocked()
}

// detached reports whether the connection has let go of nc.
func (s *sockConn) detached() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nc == nil && s.fd >= 0
}

// releaseLocked closes nc if the connection is idle and no call is in
// nc; the socket stays open on fd. mu must be held.
func (s *sockConn) releaseLocked() {
	if s.nc != nil && s.idle.Load() && s.busy.Load() == 0 {
		s.nc.Close()
		s.nc = nil
	}
}

// attach makes nc again, for a call that has to wait.
func (s *sockConn) attach(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idle.Store(false)
	switch {
	case s.closed:
		return s.opError(op, net.ErrClosed)
	case s.nc != nil:
		return nil
	}
	nfd, err := dupCloexec(int(s.fd))
	if err != nil {
		return s.opError(op, os.NewSyscallError("dup", err))
	}
	// FileConn makes nc on a descriptor of its own. It has the socket
	// blocking for a moment (os.File.Fd): with mu locked, no call on fd
	// is made meanwhile.
	f := os.NewFile(uintptr(nfd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return s.opError(op, err)
	}
	if d := s.rdl.Load(); d != 0 {
		nc.SetReadDeadline(time.Unix(0, d))
	}
	if d := s.wdl.Load(); d != 0 {
		nc.SetWriteDeadline(time.Unix(0, d))
	}
	s.nc, s.attachedAt = nc, time.Now().UnixNano()
	return nil
}

// enter returns nc, counted as in a call, if attached. It is called with
// mu read-locked.
func (s *sockConn) enter() net.Conn {
	nc := s.nc
	if nc != nil {
		s.busy.Add(1)
	}
	return nc
}

// leave ends a call in nc, and lets nc go if it was the last one of an
// idle connection.
func (s *sockConn) leave() {
	if s.busy.Add(-1) == 0 && s.idle.Load() {
		s.mu.Lock()
		s.releaseLocked()
		s.mu.Unlock()
	}
}

func (s *sockConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		s.mu.RLock()
		if nc := s.enter(); nc != nil {
			s.mu.RUnlock()
			n, err := nc.Read(p)
			s.leave()
			return n, err
		}
		if err := s.check("read", &s.rdl); err != nil {
			s.mu.RUnlock()
			return 0, err
		}
		n, err := syscall.Read(int(s.fd), p)
		for err == syscall.EINTR {
			n, err = syscall.Read(int(s.fd), p)
		}
		s.mu.RUnlock()
		switch {
		case err == syscall.EAGAIN:
			if err := s.attach("read"); err != nil {
				return 0, err
			}
		case err != nil:
			return 0, s.opError("read", os.NewSyscallError("read", err))
		case n == 0:
			return 0, io.EOF
		default:
			return n, nil
		}
	}
}

func (s *sockConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		s.mu.RLock()
		if nc := s.enter(); nc != nil {
			s.mu.RUnlock()
			n, err := nc.Write(p[written:])
			s.leave()
			return written + n, err
		}
		if err := s.check("write", &s.wdl); err != nil {
			s.mu.RUnlock()
			return written, err
		}
		n, err := syscall.Write(int(s.fd), p[written:])
		for err == syscall.EINTR {
			n, err = syscall.Write(int(s.fd), p[written:])
		}
		s.mu.RUnlock()
		written += max(n, 0)
		switch {
		case written == len(p):
		case err == nil || err == syscall.EAGAIN: // the socket is full
			if err := s.attach("write"); err != nil {
				return written, err
			}
		default:
			return written, s.opError("write", os.NewSyscallError("write", err))
		}
	}
	return written, nil
}

// check returns the error of a call on fd that cannot be made: the
// connection is closed, or the deadline d has passed (as the runtime
// checks it before trying). mu must be read-locked.
func (s *sockConn) check(op string, d *atomic.Int64) error {
	if s.closed {
		return s.opError(op, net.ErrClosed)
	}
	if t := d.Load(); t != 0 && t <= time.Now().UnixNano() {
		return s.opError(op, os.ErrDeadlineExceeded)
	}
	return nil
}

func (s *sockConn) opError(op string, err error) error {
	nw := "tcp"
	if s.raddr != nil {
		nw = s.raddr.Network()
	}
	return &net.OpError{Op: op, Net: nw, Addr: s.raddr, Err: err}
}

func (s *sockConn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.opError("close", net.ErrClosed)
	}
	s.closed = true
	var err error
	if s.nc != nil {
		err = s.nc.Close()
		s.nc = nil
	}
	if s.fd >= 0 {
		if cerr := syscall.Close(int(s.fd)); err == nil && cerr != nil {
			err = s.opError("close", os.NewSyscallError("close", cerr))
		}
	}
	return err
}

// CloseWrite shuts down the writing side (linger.go).
func (s *sockConn) CloseWrite() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.opError("close", net.ErrClosed)
	}
	if s.fd < 0 {
		return s.nc.(interface{ CloseWrite() error }).CloseWrite()
	}
	if err := syscall.Shutdown(int(s.fd), syscall.SHUT_WR); err != nil {
		return s.opError("close", os.NewSyscallError("shutdown", err))
	}
	return nil
}

func (s *sockConn) RemoteAddr() net.Addr { return s.raddr }

// LocalAddr is the socket's address; nil once the connection is closed.
func (s *sockConn) LocalAddr() net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.nc != nil {
		return s.nc.LocalAddr()
	}
	if s.closed {
		return nil
	}
	sa, err := syscall.Getsockname(int(s.fd))
	if err != nil {
		return nil
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return nil
}

func (s *sockConn) SetDeadline(t time.Time) error {
	if err := s.SetReadDeadline(t); err != nil {
		return err
	}
	return s.SetWriteDeadline(t)
}

func (s *sockConn) SetReadDeadline(t time.Time) error {
	return s.setDeadline(&s.rdl, t, net.Conn.SetReadDeadline)
}

func (s *sockConn) SetWriteDeadline(t time.Time) error {
	return s.setDeadline(&s.wdl, t, net.Conn.SetWriteDeadline)
}

func (s *sockConn) setDeadline(d *atomic.Int64, t time.Time, set func(net.Conn, time.Time) error) error {
	if t.IsZero() {
		d.Store(0)
	} else {
		d.Store(max(t.UnixNano(), 1))
	}
	// Read-locked: attach, which gives a new nc the deadlines, either
	// saw this one or has made the nc set here.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.opError("set", net.ErrClosed)
	}
	if s.nc != nil {
		return set(s.nc, t)
	}
	return nil
}

// Control runs f on the descriptor the poller watches.
func (s *sockConn) Control(f func(fd uintptr)) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.opError("control", net.ErrClosed)
	}
	if s.fd >= 0 {
		f(uintptr(s.fd))
		return nil
	}
	rc, err := s.nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(f)
}

// dupCloexec duplicates fd, close-on-exec.
func dupCloexec(fd int) (int, error) {
	for {
		nfd, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
		switch e {
		case 0:
			return int(nfd), nil
		case syscall.EINTR:
			continue
		}
		return -1, e
	}
}
