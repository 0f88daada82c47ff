package listener

import (
	"net"
	"net/netip"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
)

// Without proxy_trusted, only loopback may send a PROXY header; a list
// replaces that default; unix peers are all trusted.
func TestProxyPolicy(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	def := Config{Type: TypeTCP, ProxyProtocol: true}
	listed := Config{Type: TypeTCP, ProxyProtocol: true, ProxyTrusted: []string{"10.0.0.0/8"}}
	for _, tc := range []struct {
		name string
		cfg  Config
		peer net.Addr
		want proxyproto.Policy
	}{
		{"default 127.0.0.1", def, tcp("127.0.0.1:40000"), proxyproto.USE},
		{"default 127.200.3.4", def, tcp("127.200.3.4:40000"), proxyproto.USE},
		{"default ::1", def, tcp("[::1]:40000"), proxyproto.USE},
		{"default v4-mapped loopback", def, tcp("[::ffff:127.0.0.1]:40000"), proxyproto.USE},
		{"default 192.0.2.7", def, tcp("192.0.2.7:40000"), proxyproto.REJECT},
		{"default 10.0.0.1", def, tcp("10.0.0.1:40000"), proxyproto.REJECT},
		{"default 2001:db8::1", def, tcp("[2001:db8::1]:40000"), proxyproto.REJECT},
		{"default v4-mapped 192.0.2.7", def, tcp("[::ffff:192.0.2.7]:40000"), proxyproto.REJECT},
		{"default tls", Config{Type: TypeTLS, ProxyProtocol: true}, tcp("192.0.2.7:40000"), proxyproto.REJECT},
		{"default ws", Config{Type: TypeWS, ProxyProtocol: true}, tcp("192.0.2.7:40000"), proxyproto.REJECT},
		{"listed 10.1.2.3", listed, tcp("10.1.2.3:40000"), proxyproto.USE},
		{"listed replaces loopback", listed, tcp("127.0.0.1:40000"), proxyproto.REJECT},
		{"unix", Config{Type: TypeUnix, ProxyProtocol: true}, &net.UnixAddr{Name: "@", Net: "unix"}, proxyproto.USE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy, err := proxyPolicy(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := policy(proxyproto.ConnPolicyOptions{Upstream: tc.peer, Downstream: tcp("127.0.0.1:1883")})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("policy for %s: %v; want %v", tc.peer, got, tc.want)
			}
		})
	}
}
