package listener_test

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/internal/testpki"
	"github.com/ternmq/tern/listener"
)

// The address a load balancer reports in its PROXY headers.
const (
	proxiedHost = "192.0.2.7"
	proxiedAddr = "192.0.2.7:41234"
)

// proxyHeader is a PROXY header of the given version naming proxiedAddr.
func proxyHeader(t testing.TB, version byte) []byte {
	t.Helper()
	h := &proxyproto.Header{
		Version:           version,
		Command:           proxyproto.PROXY,
		TransportProtocol: proxyproto.TCPv4,
		SourceAddr:        &net.TCPAddr{IP: net.ParseIP(proxiedHost), Port: 41234},
		DestinationAddr:   &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1883},
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialProxied connects over TCP and writes header, then speaks through
// wrap (TLS or nothing).
func dialProxied(header []byte, wrap func(net.Conn) net.Conn) dialer {
	return func(t testing.TB, addr string) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(header); err != nil {
			return nil, err
		}
		if wrap != nil {
			return wrap(c), nil
		}
		return c, nil
	}
}

func TestProxyProtocolSetsRemoteAddr(t *testing.T) {
	ca := testpki.New(t, "proxy")
	srv := ca.Server("server", "server")
	tlsCfg := listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}
	overTLS := func(c net.Conn) net.Conn { return tls.Client(c, ca.ClientConfig()) }
	for _, version := range []byte{1, 2} {
		h := proxyHeader(t, version)
		for _, tc := range []struct {
			name string
			cfg  listener.Config
			dial dialer
		}{
			{"tcp", listener.Config{Type: "tcp"}, dialProxied(h, nil)},
			{"tcp trusted", listener.Config{Type: "tcp", ProxyTrusted: []string{"127.0.0.0/8"}}, dialProxied(h, nil)},
			{"tls", listener.Config{Type: "tls", TLS: tlsCfg}, dialProxied(h, overTLS)},
			{"ws", listener.Config{Type: "ws"}, dialWS(nil, h, "mqtt")},
			{"wss", listener.Config{Type: "wss", TLS: tlsCfg}, dialWS(ca.ClientConfig(), h, "mqtt")},
		} {
			t.Run(tc.name+" v"+string('0'+version), func(t *testing.T) {
				tc.cfg.ProxyProtocol = true
				l := open(t, tc.cfg)
				ch := acceptLoop(t, l)
				c, err := tc.dial(t, l.Addr().String())
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				s := next(t, ch)
				defer closeBoth(c, s)
				roundTrip(t, c, s)
				if got := s.RemoteAddr().String(); got != proxiedAddr {
					t.Fatalf("RemoteAddr %s; want %s from the header", got, proxiedAddr)
				}
			})
		}
	}
}

// A malformed header closes that connection; the listener and the other
// connections go on.
func TestProxyProtocolMalformedHeader(t *testing.T) {
	for _, bad := range []struct{ name, header string }{
		{"v1 garbage", "PROXY GARBAGE\r\n"},
		{"v1 bad address", "PROXY TCP4 999.1.1.1 192.0.2.1 1 2\r\n"},
		{"v2 bad length", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			l := open(t, listener.Config{Type: "tcp", ProxyProtocol: true})
			ch := acceptLoop(t, l)
			good, err := dialProxied(proxyHeader(t, 1), nil)(t, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer good.Close()
			goodS := next(t, ch)

			c, err := dialProxied([]byte(bad.header+"hello\n"), nil)(t, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := next(t, ch)
			readFails(t, s)
			s.Close()
			readFails(t, c) // the client sees the connection closed

			roundTrip(t, good, goodS)
			later, err := dialTCP(t, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer later.Close()
			roundTrip(t, later, next(t, ch))
		})
	}
}

// With proxy_trusted, an upstream outside the list may connect but not
// send a header; one inside may.
func TestProxyProtocolUntrustedUpstream(t *testing.T) {
	l := open(t, listener.Config{Type: "tcp", ProxyProtocol: true, ProxyTrusted: []string{"192.0.2.0/24", "10.1.2.3"}})
	ch := acceptLoop(t, l)

	c, err := dialProxied(proxyHeader(t, 2), nil)(t, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := next(t, ch)
	go c.Write([]byte("hello\n"))
	if err := readFails(t, s); !errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) {
		t.Fatalf("refused with %v; want %v", err, proxyproto.ErrSuperfluousProxyHeader)
	}
	s.Close()

	plain, err := dialTCP(t, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ps := next(t, ch)
	roundTrip(t, plain, ps)
	if got := host(t, ps.RemoteAddr()); got != "127.0.0.1" {
		t.Fatalf("RemoteAddr %s; want the socket's", ps.RemoteAddr())
	}
}

// dialFrom connects from the local address ip (any of 127.0.0.0/8 is
// loopback) and writes header, if any.
func dialFrom(t testing.TB, ip, addr string, header []byte) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	if header != nil {
		if _, err := c.Write(header); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Without proxy_trusted, only the default upstreams (loopback in
// production) may send a header. All of 127.0.0.0/8 is loopback, so the
// test trusts 127.0.0.1 alone and plays a remote upstream from 127.0.0.2:
// its header is refused, and a flood of them warns once; without a header
// it is served with its own address.
func TestProxyProtocolDefaultTrust(t *testing.T) {
	listener.SetDefaultProxyTrusted(t, []string{"127.0.0.1/32"})
	var logged mt.SyncBuffer
	l := open(t, listener.Config{Type: "tcp", ProxyProtocol: true, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	ch := acceptLoop(t, l)
	addr := l.Addr().String()

	trusted := dialFrom(t, "127.0.0.1", addr, proxyHeader(t, 2))
	ts := next(t, ch)
	roundTrip(t, trusted, ts)
	if got := ts.RemoteAddr().String(); got != proxiedAddr {
		t.Fatalf("RemoteAddr %s; want %s from the trusted header", got, proxiedAddr)
	}

	for range 3 {
		c := dialFrom(t, "127.0.0.2", addr, proxyHeader(t, 1))
		s := next(t, ch)
		go c.Write([]byte("hello\n"))
		if err := readFails(t, s); !errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) {
			t.Fatalf("refused with %v; want %v", err, proxyproto.ErrSuperfluousProxyHeader)
		}
		if got := host(t, s.RemoteAddr()); got != "127.0.0.2" {
			t.Fatalf("refused connection's RemoteAddr %s; want the socket's", s.RemoteAddr())
		}
		s.Close()
		readFails(t, c)
	}
	if n := strings.Count(logged.String(), "untrusted peer"); n != 1 {
		t.Fatalf("%d warnings for 3 refused headers; want 1:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "peer=127.0.0.2:") {
		t.Fatalf("warning does not name the peer:\n%s", logged.String())
	}

	plain := dialFrom(t, "127.0.0.2", addr, nil)
	ps := next(t, ch)
	roundTrip(t, plain, ps)
	if got := host(t, ps.RemoteAddr()); got != "127.0.0.2" {
		t.Fatalf("RemoteAddr %s; want the socket's", ps.RemoteAddr())
	}
}
