package listener_test

import (
	"errors"
	"github.com/ternmq/tern/internal/testpki"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ternmq/tern/listener"
)

// Checks [MQTT-6.0.0-4].
func TestWSRefusesOtherSubprotocols(t *testing.T) {
	l := open(t, listener.Config{Type: "ws"})
	for _, offered := range [][]string{{"chat"}, {"wamp", "graphql-ws"}} {
		t.Run(strings.Join(offered, ","), func(t *testing.T) {
			_, err := dialWS(nil, nil, offered...)(t, l.Addr().String())
			var he *httpError
			if !errors.As(err, &he) {
				t.Fatalf("dial: %v; want an HTTP refusal", err)
			}
			if he.status != http.StatusBadRequest || !strings.Contains(he.body, `"mqtt"`) {
				t.Fatalf("refused with %d %q; want 400 naming mqtt", he.status, he.body)
			}
		})
	}
	// Offering mqtt among others is fine, and mqtt is what is chosen.
	ch := acceptLoop(t, l)
	c, err := dialWS(nil, nil, "chat", "mqtt")(t, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := next(t, ch)
	roundTrip(t, c, s)
	closeBoth(c, s)
}

func TestWSPath(t *testing.T) {
	l := open(t, listener.Config{Type: "ws", Path: "/custom"})
	resp, err := http.Get("http://" + l.Addr().String() + "/mqtt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /mqtt: %d; want 404", resp.StatusCode)
	}
	// A plain GET on the path is told to upgrade.
	resp, err = http.Get("http://" + l.Addr().String() + "/custom")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("GET /custom: %d; want 426", resp.StatusCode)
	}
}

// Close fails a pending Accept with net.ErrClosed, and every later one.
func TestWSCloseFailsAccept(t *testing.T) {
	for _, kind := range []string{"ws", "wss"} {
		t.Run(kind, func(t *testing.T) {
			cfg := listener.Config{Type: kind, Address: "127.0.0.1:0"}
			if kind == "wss" {
				srv := testpki.New(t, "close").Server("server", "server")
				cfg.TLS = listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
			}
			l, err := listener.Listen(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ch := acceptLoop(t, l)
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			a := <-ch
			if !errors.Is(a.err, net.ErrClosed) {
				t.Fatalf("pending Accept: %v, %v; want net.ErrClosed", a.c, a.err)
			}
			if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("later Accept: %v; want net.ErrClosed", err)
			}
			if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
				t.Fatal("the socket still accepts after Close")
			}
		})
	}
}

// Only tls and wss listeners reload.
func TestReloaderKinds(t *testing.T) {
	srv := testpki.New(t, "kinds").Server("server", "server")
	tlsCfg := listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
	for _, tc := range []struct {
		cfg  listener.Config
		want bool
	}{
		{listener.Config{Type: "tcp"}, false},
		{listener.Config{Type: "ws"}, false},
		{listener.Config{Type: "tls", TLS: tlsCfg}, true},
		{listener.Config{Type: "wss", TLS: tlsCfg}, true},
	} {
		if _, ok := open(t, tc.cfg).(listener.Reloader); ok != tc.want {
			t.Errorf("%s is a Reloader: %v; want %v", tc.cfg.Type, ok, tc.want)
		}
	}
}
