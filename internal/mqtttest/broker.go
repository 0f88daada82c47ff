package mqtttest

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/ternmq/tern/broker"
)

// Broker is a broker serving on a loopback port for one test.
type Broker struct {
	*broker.Broker
	Addr string
	ln   net.Listener
}

// StartBroker starts a broker with opts on 127.0.0.1:0; it is closed when
// the test ends. Logs are discarded unless opts.Logger is set.
func StartBroker(t testing.TB, opts broker.Options) *Broker {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, err := broker.New(opts)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ln) }()
	tb := &Broker{Broker: b, Addr: ln.Addr().String(), ln: ln}
	t.Cleanup(func() {
		b.Close()
		if err := <-done; err != nil && !errors.Is(err, broker.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return tb
}
