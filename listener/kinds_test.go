package listener_test

import (
	"github.com/ternmq/tern/internal/testpki"
	"net"
	"path/filepath"
	"testing"

	"github.com/ternmq/tern/listener"
)

// Every kind of listener accepts a connection that carries bytes both ways
// and whose RemoteAddr is the client's.
func TestKindsCarryBytes(t *testing.T) {
	ca := testpki.New(t, "kinds")
	srv := ca.Server("server", "server")
	tlsCfg := listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
	sock := filepath.Join(t.TempDir(), "tern.sock")
	for _, tc := range []struct {
		name string
		cfg  listener.Config
		dial dialer
	}{
		{"default is tcp", listener.Config{}, dialTCP},
		{"tcp", listener.Config{Type: "tcp"}, dialTCP},
		{"tls", listener.Config{Type: "tls", TLS: tlsCfg}, dialTLS(ca.ClientConfig())},
		{"ws", listener.Config{Type: "ws"}, dialWS(nil, nil, "mqtt")},
		{"ws mqttv3.1", listener.Config{Type: "ws"}, dialWS(nil, nil, "mqttv3.1")},
		{"ws no subprotocol", listener.Config{Type: "ws"}, dialWS(nil, nil)},
		{"wss", listener.Config{Type: "wss", TLS: tlsCfg}, dialWS(ca.ClientConfig(), nil, "mqtt")},
		{"unix", listener.Config{Type: "unix", Address: sock}, dialUnix},
		{"tcp with proxy_protocol, no header", listener.Config{Type: "tcp", ProxyProtocol: true}, dialTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, tc.cfg)
			ch := acceptLoop(t, l)
			c, err := tc.dial(t, l.Addr().String())
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			s := next(t, ch)
			defer closeBoth(c, s)
			roundTrip(t, c, s)
			if tc.cfg.Type == "unix" {
				return
			}
			if got, want := host(t, s.RemoteAddr()), host(t, c.LocalAddr()); got != want && c.LocalAddr().Network() != "websocket" {
				t.Errorf("RemoteAddr %v; want the client's %v", s.RemoteAddr(), c.LocalAddr())
			}
			if got := host(t, s.RemoteAddr()); got != "127.0.0.1" {
				t.Errorf("RemoteAddr %v; want 127.0.0.1", s.RemoteAddr())
			}
		})
	}
}

func host(t testing.TB, a net.Addr) string {
	t.Helper()
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
