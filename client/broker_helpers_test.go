package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/memory"
)

// restartBroker is a Tern broker that can be stopped and started again on
// the same address with the same store, as a restart of the process would
// find it on disk.
type restartBroker struct {
	t     *testing.T
	store *memory.Store
	addr  string
	b     *broker.Broker
	done  chan error
}

func startRestartBroker(t *testing.T) *restartBroker {
	r := &restartBroker{t: t, store: memory.New(), addr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartBroker) start() {
	r.t.Helper()
	b, err := broker.New(broker.Options{Store: r.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		r.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.b, r.done = b, make(chan error, 1)
	go func() { r.done <- b.Serve(ln) }()
}

func (r *restartBroker) stop() {
	if r.b == nil {
		return
	}
	r.b.Close()
	if err := <-r.done; err != nil && !errors.Is(err, broker.ErrServerClosed) {
		r.t.Errorf("Serve: %v", err)
	}
	r.b = nil
}

func (r *restartBroker) restart() {
	r.stop()
	r.start()
}

// newTestSession starts a Session and closes it when the test ends.
func newTestSession(t *testing.T, o SessionOptions) *Session {
	t.Helper()
	if o.Backoff == (Backoff{}) {
		o.Backoff = fastBackoff()
	}
	if o.Version == packet.V5 && o.Properties.SessionExpiry == nil {
		o.Properties.SessionExpiry = ptr[uint32](600)
	}
	s, err := NewSession(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.AwaitConnection(ctx); err != nil {
		t.Fatalf("AwaitConnection: %v", err)
	}
	return s
}

// connectTest connects a Client and closes it when the test ends.
func connectTest(t *testing.T, o Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wait fails the test if ch does not close within a generous bound; it
// is a hang guard, not a timing assertion.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func wait20() <-chan time.Time { return time.After(20 * time.Second) }
