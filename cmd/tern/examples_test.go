package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"

	authfile "github.com/ternmq/tern/auth/file"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/internal/testpki"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/packet"
)

// examplesEnv stands in for /etc/tern: the files the examples name, made
// for the test.
type examplesEnv struct {
	dir  string
	pki  *testpki.PKI
	user testpki.Issued // client certificate with CN "device-7"
}

func newExamplesEnv(t *testing.T) *examplesEnv {
	e := &examplesEnv{dir: t.TempDir(), pki: testpki.New(t, "examples")}
	server := e.pki.Server("server", "broker")
	e.user = e.pki.Client("device", "device-7", nil, nil)
	hash, err := authfile.HashPassword("alice-pw", authfile.Argon2id)
	if err != nil {
		t.Fatal(err)
	}
	if err := authfile.CreateFile(filepath.Join(e.dir, "passwd"), "alice", hash); err != nil {
		t.Fatal(err)
	}
	for name, from := range map[string]string{"server.pem": server.CertFile, "server.key": server.KeyFile,
		"ca.pem": e.pki.CAFile, "acl": filepath.Join("..", "..", "examples", "acl")} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(e.dir, name), b, 0o600)
	}
	os.WriteFile(filepath.Join(e.dir, "admin-token"), []byte(exampleAdminToken+"\n"), 0o600)
	return e
}

// exampleAdminToken is in the test's admin-token file.
const exampleAdminToken = "example-admin-token"

// load reads examples/name with /etc/tern/ and /run/tern/ moved into the
// test's directory and every listener, and an admin server the file
// configures, on a free loopback port.
func (e *examplesEnv) load(t *testing.T, name string) Config {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("/etc/tern/", e.dir+"/", "/run/tern/", e.dir+"/").Replace(string(b))
	path := filepath.Join(e.dir, name)
	os.WriteFile(path, []byte(s), 0o600)
	cfg := defaultConfig()
	if err := loadConfig(path, &cfg); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Type != listener.TypeUnix {
			l.Address = "127.0.0.1:0"
		}
		if len(l.ProxyTrusted) > 0 {
			l.ProxyTrusted = []string{"127.0.0.1"} // the test plays the load balancer
		}
	}
	if a, _ := cfg.Admin.address(); a != "" && cfg.Admin.Address != nil {
		cfg.Admin.Address = new(freeAddr(t))
	}
	cfg.Storage.DataDir = t.TempDir()
	return cfg
}

// TestExamples: every listener of every example configuration takes a
// client of its kind.
func TestExamples(t *testing.T) {
	e := newExamplesEnv(t)
	tlsConf := e.pki.ClientConfig()
	mtlsConf := e.pki.ClientConfig(e.user)
	dialTCP := func(a net.Addr) (net.Conn, error) { return net.Dial(a.Network(), a.String()) }
	dialTLS := func(c *tls.Config) func(net.Addr) (net.Conn, error) {
		return func(a net.Addr) (net.Conn, error) { return tls.Dial("tcp", a.String(), c) }
	}
	dialWS := func(scheme string) func(net.Addr) (net.Conn, error) {
		return func(a net.Addr) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), mt.Timeout)
			defer cancel()
			opts := &websocket.DialOptions{Subprotocols: []string{"mqtt"}}
			if scheme == "wss" {
				opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
			}
			ws, _, err := websocket.Dial(ctx, scheme+"://"+a.String()+"/mqtt", opts)
			if err != nil {
				return nil, err
			}
			return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
		}
	}
	dialProxied := func(a net.Addr) (net.Conn, error) {
		c, err := net.Dial("tcp", a.String())
		if err == nil {
			_, err = fmt.Fprintf(c, "PROXY TCP4 203.0.113.9 127.0.0.1 40000 1883\r\n")
		}
		return c, err
	}
	for _, tc := range []struct {
		file  string
		dials []func(net.Addr) (net.Conn, error) // one per listener, in order
	}{
		{"tls.yaml", []func(net.Addr) (net.Conn, error){dialTCP, dialTLS(tlsConf)}},
		{"mtls.yaml", []func(net.Addr) (net.Conn, error){dialTLS(mtlsConf)}},
		{"websocket.yaml", []func(net.Addr) (net.Conn, error){dialWS("ws"), dialWS("wss")}},
		{"proxy.yaml", []func(net.Addr) (net.Conn, error){dialProxied}},
		{"unix.yaml", []func(net.Addr) (net.Conn, error){dialTCP}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			addrs := serveAll(t, e.load(t, tc.file), nil)
			if len(addrs) != len(tc.dials) {
				t.Fatalf("%d listeners, want %d", len(addrs), len(tc.dials))
			}
			for i, a := range addrs {
				nc, err := tc.dials[i](a)
				if err != nil {
					t.Fatalf("listener %d (%s): %v", i, a, err)
				}
				c := mt.Wrap(t, nc, packet.V311)
				if ack := c.Connect("example", true); ack.ReasonCode != 0 {
					t.Fatalf("listener %d: CONNACK %v", i, ack.ReasonCode)
				}
				c.Send(&packet.Pingreq{})
				mt.Expect[*packet.Pingresp](c)
			}
		})
	}
}

// TestSecureExample: examples/secure.yaml with examples/acl: TLS, users
// from the password file, topics from the ACL.
func TestSecureExample(t *testing.T) {
	e := newExamplesEnv(t)
	addr := serveAll(t, e.load(t, "secure.yaml"), nil)[0].String()
	dial := func(t *testing.T) *mt.Raw {
		nc, err := tls.Dial("tcp", addr, e.pki.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		return mt.Wrap(t, nc, packet.V5)
	}
	if ack := dial(t).Connect("anonymous", true); ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("anonymous: CONNACK %v", ack.ReasonCode)
	}
	alice := dial(t)
	if ack := alice.ConnectWith(&packet.Connect{ClientID: "alice-1", CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("alice-pw")}); ack.ReasonCode != 0 {
		t.Fatalf("alice: CONNACK %v", ack.ReasonCode)
	}
	for i, tc := range []struct {
		topic string
		want  packet.ReasonCode
	}{{"alice/notes", 0}, {"alice/secret/key", packet.NotAuthorized}, {"devices/alice-1/state", 0}, {"public/x", packet.NotAuthorized}} {
		alice.Send(&packet.Publish{Topic: tc.topic, QoS: 1, PacketID: uint16(i + 1), Payload: []byte("x")})
		if ack := mt.Expect[*packet.Puback](alice); ack.ReasonCode != tc.want {
			t.Errorf("alice publishes to %s: PUBACK %v, want %v", tc.topic, ack.ReasonCode, tc.want)
		}
	}
	if ack := alice.Subscribe(9, 1, "$SYS/#"); ack.ReasonCodes[0] != packet.NotAuthorized {
		t.Errorf("alice subscribes to $SYS/#: %v", ack.ReasonCodes[0])
	}
}
