//go:build linux

package broker

import (
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// sockPair returns a detached sockConn accepted from a loopback listener
// and the client's end.
func sockPair(t *testing.T) (*sockConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := newSockConn(nc)
	t.Cleanup(func() { s.Close() })
	if s.RemoteAddr().String() != cl.LocalAddr().String() {
		t.Fatalf("remote address %v, want %v", s.RemoteAddr(), cl.LocalAddr())
	}
	s.detach()
	if !s.detached() {
		t.Fatal("not detached")
	}
	return s, cl
}

// readable waits until the socket under s has input.
func readable(t *testing.T, s *sockConn) {
	t.Helper()
	var fds syscall.FdSet
	fds.Bits[s.fd/64] |= 1 << (uint(s.fd) % 64)
	tv := syscall.Timeval{Sec: 10}
	if n, err := syscall.Select(int(s.fd)+1, &fds, nil, nil, &tv); n != 1 || err != nil {
		t.Fatalf("select: %d, %v", n, err)
	}
}

// TestSockConnReadsWithoutTheRuntime: input that has arrived is read
// from a detached connection as it is, and one that has to wait attaches
// it to the runtime's poller, deadline and all; a deadline that has
// passed fails a read whether input has arrived or not, as net.Conn's.
func TestSockConnReadsWithoutTheRuntime(t *testing.T) {
	s, cl := sockPair(t)
	cl.Write([]byte("hello"))
	readable(t, s)
	buf := make([]byte, 16)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if !s.detached() {
		t.Fatal("a read that did not wait attached the connection")
	}

	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := s.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	if s.detached() {
		t.Fatal("a read that waited did not attach the connection")
	}
	// Attached recently: a park leaves it so.
	s.detach()
	if s.detached() {
		t.Fatal("detached right after waiting")
	}
	s.mu.Lock()
	s.attachedAt -= int64(detachAfter)
	s.mu.Unlock()
	s.detach()
	if !s.detached() {
		t.Fatal("not detached a while after waiting")
	}

	cl.Write([]byte("late"))
	readable(t, s)
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline with input: %v", err)
	}
	s.SetReadDeadline(time.Time{})
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}

	// A read waiting in the attached connection holds it until it returns.
	got := make(chan string)
	go func() {
		n, err := s.Read(buf)
		if err != nil {
			got <- err.Error()
		}
		got <- string(buf[:n])
	}()
	for s.busy.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	s.mu.Lock()
	s.attachedAt -= int64(detachAfter)
	s.mu.Unlock()
	s.detach()
	if s.detached() {
		t.Fatal("detached under a waiting read")
	}
	cl.Write([]byte("woken"))
	if g := <-got; g != "woken" {
		t.Fatalf("read %q", g)
	}
	if !s.detached() {
		t.Fatal("not detached once the waiting read returned")
	}

	cl.Close()
	readable(t, s)
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v", n, err)
	}
	s.Close()
	if _, err := s.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// TestSockConnWrites: a write larger than the socket takes attaches the
// connection and waits, within its deadline; all of it arrives, in
// order; CloseWrite and Close reach the peer.
func TestSockConnWrites(t *testing.T) {
	s, cl := sockPair(t)
	if _, err := s.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	if !s.detached() {
		t.Fatal("a write that did not wait attached the connection")
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(cl, buf); err != nil || string(buf) != "small" {
		t.Fatalf("read %q, %v", buf, err)
	}

	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	s.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := s.Write(big) // nobody reads: it times out
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == len(big) {
		t.Fatalf("wrote %d of %d: %v", n, len(big), err)
	}
	if s.detached() {
		t.Fatal("a write that waited did not attach the connection")
	}
	s.SetWriteDeadline(time.Time{})
	sum := make(chan uint32)
	go func() {
		h := crc32.NewIEEE()
		io.Copy(h, cl)
		sum <- h.Sum32()
	}()
	if m, err := s.Write(big[n:]); err != nil || m != len(big)-n {
		t.Fatalf("wrote %d of %d: %v", m, len(big)-n, err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, want := <-sum, crc32.ChecksumIEEE(big); got != want {
		t.Fatalf("the peer read something else (crc %x, want %x)", got, want)
	}
	// The peer's close reaches the reading side, detached or not.
	cl.Close()
	if _, err := io.Copy(io.Discard, s); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

// TestSockConnCloseEndsTheConnection: closing a detached connection
// closes the socket (the peer reads EOF), and so does closing one
// attached after it was detached.
func TestSockConnCloseEndsTheConnection(t *testing.T) {
	for _, attach := range []bool{false, true} {
		s, cl := sockPair(t)
		if attach {
			if err := s.attach("read"); err != nil {
				t.Fatal(err)
			}
		}
		if a := s.LocalAddr(); a == nil || a.String() != cl.RemoteAddr().String() {
			t.Fatalf("attached %v: local address %v, want %v", attach, a, cl.RemoteAddr())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		cl.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := cl.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("attached %v: the peer read %d, %v", attach, n, err)
		}
		if a := s.LocalAddr(); a != nil {
			t.Fatalf("local address of a closed connection: %v", a)
		}
	}
}

// TestSockConnSize: a parked connection holds a sockConn, within the 96
// bytes size class.
func TestSockConnSize(t *testing.T) {
	if n := unsafe.Sizeof(sockConn{}); n > 96 {
		t.Errorf("sockConn is %d bytes, more than 96", n)
	}
}
