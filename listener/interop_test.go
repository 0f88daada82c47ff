package listener_test

// Interoperability: a real broker serving on our listeners, and clients we
// did not write (paho.mqtt.golang, mosquitto_pub/mosquitto_sub, MQTT.js)
// speaking to it over TLS, mutual TLS and WebSocket. A missing peer fails
// the test rather than skipping it, so that CI cannot pass without them.

import (
	"crypto/tls"
	"errors"
	"github.com/ternmq/tern/internal/testpki"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/listener"
)

// served is a broker serving on a plain TCP listener (for Go-side
// clients) and on the listener under test.
type served struct {
	*broker.Broker
	TCP  string // address of the plain listener
	Addr string // address of the listener under test
}

// serve starts a broker on cfg's listener and a TCP one; both close when
// the test ends.
func serve(t *testing.T, cfg listener.Config) *served {
	t.Helper()
	return serveWith(t, cfg, broker.Options{})
}

// serveWith is serve with broker options opts (logs discarded unless
// opts.Logger is set).
func serveWith(t *testing.T, cfg listener.Config, opts broker.Options) *served {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := listener.Listen(cfg)
	if err != nil {
		plain.Close()
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- b.Serve(plain) }()
	go func() { done <- b.Serve(l) }()
	t.Cleanup(func() {
		b.Close()
		for range 2 {
			if err := <-done; err != nil && !errors.Is(err, broker.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
	})
	return &served{Broker: b, TCP: plain.Addr().String(), Addr: l.Addr().String()}
}

// pahoClient connects a paho.mqtt.golang client (MQTT 3.1.1) to url; it is
// disconnected when the test ends.
func pahoClient(t *testing.T, url, id string, tlsCfg *tls.Config) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(timeout).SetWriteTimeout(timeout).SetOrderMatters(true)
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(timeout) {
		return nil, errors.New("connect: no answer")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// subscribe subscribes c to filter and returns the payloads that arrive.
func subscribe(t *testing.T, c paho.Client, filter string) <-chan string {
	t.Helper()
	got := make(chan string, 16)
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	if !tok.WaitTimeout(timeout) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return got
}

// publish publishes payload to topic at QoS 1 and waits for the PUBACK.
func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(timeout) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// receive waits for payload on got.
func receive(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case p := <-got:
		if p != want {
			t.Fatalf("received %q; want %q", p, want)
		}
	case <-time.After(timeout):
		t.Fatalf("%q never arrived", want)
	}
}

func TestInteropPahoTLS(t *testing.T) {
	ca := testpki.New(t, "paho")
	srv := ca.Server("server", "server")
	cl := ca.Client("client", "paho-user", nil, nil)
	plainTLS := listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
	mutual := listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile,
		ClientCAFile: ca.CAFile, ClientAuth: "require", CertUsername: "cn"}
	for _, tc := range []struct {
		name   string
		files  listener.TLSConfig
		client *tls.Config
		ok     bool
	}{
		{"server certificate only", plainTLS, ca.ClientConfig(), true},
		{"mutual", mutual, ca.ClientConfig(cl), true},
		{"mutual without a client certificate", mutual, ca.ClientConfig(), false},
		{"untrusted server", plainTLS, testpki.New(t, "stranger").ClientConfig(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := serve(t, listener.Config{Type: "tls", TLS: tc.files})
			c, err := pahoClient(t, "ssl://"+b.Addr, "paho-tls", tc.client)
			if !tc.ok {
				if err == nil {
					t.Fatal("connected; want a refusal")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := subscribe(t, c, "tern/tls/#")
			publish(t, c, "tern/tls/a", "over tls")
			receive(t, got, "over tls")
		})
	}
}

// TestInteropMQTTJS runs MQTT.js (Node) over ws:// and wss://; a Go client
// on the plain listener sees what it publishes.
// Checks [MQTT-6.0.0-2].
func TestInteropMQTTJS(t *testing.T) {
	node, err := lookPath("node", "install Debian nodejs")
	if err != nil {
		t.Fatal(err)
	}
	script := mqttjsScript(t)
	ca := testpki.New(t, "mqttjs")
	srv := ca.Server("server", "server")
	for _, tc := range []struct {
		name string
		cfg  listener.Config
		args func(addr string) []string
	}{
		{"ws", listener.Config{Type: "ws"}, func(addr string) []string {
			return []string{"ws://" + addr + "/mqtt"}
		}},
		{"wss", listener.Config{Type: "wss", TLS: listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}},
			func(addr string) []string { return []string{"wss://" + addr + "/mqtt", ca.CAFile} }},
		{"ws custom path", listener.Config{Type: "ws", Path: "/broker"}, func(addr string) []string {
			return []string{"ws://" + addr + "/broker"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := serve(t, tc.cfg)
			goSide, err := pahoClient(t, "tcp://"+b.TCP, "go-side", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := subscribe(t, goSide, "tern/js/out")
			runPeer(t, node, append([]string{script}, tc.args(b.Addr)...)...)
			receive(t, got, "hello from mqtt.js")
		})
	}
}
