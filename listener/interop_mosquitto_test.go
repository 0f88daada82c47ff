package listener_test

import (
	"github.com/ternmq/tern/internal/testpki"
	"net"
	"strings"
	"testing"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/listener"
)

// TestInteropMosquittoTLS runs mosquitto_sub and mosquitto_pub (OpenSSL)
// against TLS listeners, with and without client certificates.
func TestInteropMosquittoTLS(t *testing.T) {
	pub, err := lookPath("mosquitto_pub", "install Debian mosquitto-clients")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := lookPath("mosquitto_sub", "install Debian mosquitto-clients")
	if err != nil {
		t.Fatal(err)
	}
	ca := testpki.New(t, "mosquitto")
	srv := ca.Server("server", "server")
	cl := ca.Client("client", "mosq-user", nil, nil)
	foreign := testpki.New(t, "foreign").Client("foreign", "intruder", nil, nil)
	withCert := func(is testpki.Issued) []string { return []string{"--cert", is.CertFile, "--key", is.KeyFile} }
	for _, tc := range []struct {
		name   string
		tls    listener.TLSConfig
		client []string // certificate flags
		ok     bool
	}{
		{"server certificate only", listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}, nil, true},
		{"mutual", listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile,
			ClientCAFile: ca.CAFile, ClientAuth: "require", CertUsername: "cn"}, withCert(cl), true},
		{"mutual without a client certificate", listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile,
			ClientCAFile: ca.CAFile, ClientAuth: "require"}, nil, false},
		{"mutual with another CA's certificate", listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile,
			ClientCAFile: ca.CAFile, ClientAuth: "require"}, withCert(foreign), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := serve(t, listener.Config{Type: "tls", TLS: tc.tls})
			host, port, _ := net.SplitHostPort(b.Addr)
			args := func(more ...string) []string {
				a := append([]string{"-h", host, "-p", port, "--cafile", ca.CAFile}, tc.client...)
				return append(a, more...)
			}
			if !tc.ok {
				p := startPeer(t, pub, args("-t", "tern/mosq", "-m", "refused", "-q", "1")...)
				if out, err := p.wait(); err == nil {
					t.Fatalf("mosquitto_pub succeeded; want a refusal\n%s", out)
				}
				return
			}
			s := startPeer(t, sub, args("-t", "tern/mosq/#", "-C", "1", "-v", "-q", "1")...)
			mt.Eventually(t, "mosquitto_sub's subscription", func() bool { return b.Stats().Subscriptions == 1 })
			runPeer(t, pub, args("-t", "tern/mosq/a", "-m", "over tls", "-q", "1")...)
			out, err := s.wait()
			if err != nil {
				t.Fatalf("mosquitto_sub: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(out); got != "tern/mosq/a over tls" {
				t.Fatalf("mosquitto_sub printed %q", got)
			}
		})
	}
}
