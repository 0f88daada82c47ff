package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// versions are the protocol levels every behaviour test runs for.
var versions = []struct {
	name string
	v    byte
}{{"3.1", packet.V31}, {"3.1.1", packet.V311}, {"5.0", packet.V5}}

// fakeServer is a scripted MQTT server for one connection on 127.0.0.1:0:
// it answers CONNECT with a given CONNACK, then the test reads what the
// client sent with expect and writes packets with send.
type fakeServer struct {
	t       *testing.T
	ln      net.Listener
	version byte
	connack *packet.Connack

	mu        sync.Mutex
	conn      net.Conn
	in        chan packet.Packet // closed when the connection ends
	readErr   error
	connectPk *packet.Connect
	ready     chan struct{} // closed after CONNACK is sent
}

func newFakeServer(t *testing.T, version byte, connack *packet.Connack) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if connack == nil {
		connack = &packet.Connack{}
	}
	s := &fakeServer{t: t, ln: ln, version: version, connack: connack,
		in: make(chan packet.Packet, 100), ready: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.mu.Unlock()
	})
	go s.serve()
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) serve() {
	conn, err := s.ln.Accept()
	if err != nil {
		close(s.in)
		return
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	defer conn.Close()
	br := bufio.NewReader(conn)
	pk, err := packet.ReadPacket(br, 0, 0)
	if err != nil {
		s.readErr = err
		close(s.in)
		return
	}
	s.connectPk, _ = pk.(*packet.Connect)
	s.send(s.connack)
	close(s.ready)
	for {
		pk, err := packet.ReadPacket(br, s.version, 0)
		if err != nil {
			s.mu.Lock()
			s.readErr = err
			s.mu.Unlock()
			close(s.in)
			return
		}
		s.in <- pk
	}
}

// send writes the packets to the client in one write.
func (s *fakeServer) send(ps ...packet.Packet) {
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.Append(b, s.version); err != nil {
			s.t.Errorf("encode %T: %v", p, err)
			return
		}
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if _, err := conn.Write(b); err != nil {
		s.t.Errorf("send %s: %v", ps[0].Type(), err)
	}
}

// expect returns the next packet from the client, failing the test after
// a timeout or when the connection ended.
func (s *fakeServer) expect() packet.Packet {
	s.t.Helper()
	select {
	case pk, ok := <-s.in:
		if !ok {
			s.t.Fatalf("connection ended while expecting a packet: %v", s.readErr)
		}
		return pk
	case <-time.After(5 * time.Second):
		s.t.Fatal("timeout expecting a packet")
	}
	return nil
}

// expectNone checks that the client sends nothing for d.
func (s *fakeServer) expectNone(d time.Duration) {
	s.t.Helper()
	select {
	case pk, ok := <-s.in:
		if ok {
			s.t.Fatalf("unexpected %s %+v", pk.Type(), pk)
		}
	case <-time.After(d):
	}
}

// expectEOF waits for the connection to end.
func (s *fakeServer) expectEOF() {
	s.t.Helper()
	select {
	case pk, ok := <-s.in:
		if ok {
			s.t.Fatalf("got %s %+v, want the connection to end", pk.Type(), pk)
		}
	case <-time.After(5 * time.Second):
		s.t.Fatal("timeout waiting for the connection to end")
	}
}

// connect connects a client to s with o (Address and Version filled in).
func (s *fakeServer) connect(o Options) *Client {
	s.t.Helper()
	o.Address = s.addr()
	o.Version = s.version
	if o.ClientID == "" {
		o.ClientID = "test"
	}
	o.CleanStart = true
	c, err := Connect(context.Background(), o)
	if err != nil {
		s.t.Fatalf("Connect: %v", err)
	}
	s.t.Cleanup(func() { c.Close() })
	<-s.ready
	return c
}

func expectType[T packet.Packet](t *testing.T, pk packet.Packet) T {
	t.Helper()
	p, ok := pk.(T)
	if !ok {
		t.Fatalf("got %s %+v, want %T", pk.Type(), pk, p)
	}
	return p
}

func waitDone(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client not done")
	}
}

// async runs f and returns its error on a channel.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func recvErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("timeout")
	}
	return errors.New("unreachable")
}

func ptr[T any](v T) *T { return &v }
