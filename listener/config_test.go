package listener_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ternmq/tern/listener"
)

func TestValidate(t *testing.T) {
	certs := listener.TLSConfig{CertFile: "c.pem", KeyFile: "k.pem"}
	withCA := func(auth, field string) listener.TLSConfig {
		c := certs
		c.ClientCAFile, c.ClientAuth, c.CertUsername = "ca.pem", auth, field
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  listener.Config
		want []string // substrings of the error; none: valid
	}{
		{"tcp", listener.Config{Address: ":1883"}, nil},
		{"tls", listener.Config{Type: "tls", Address: ":8883", TLS: certs}, nil},
		{"mtls with names", listener.Config{Type: "wss", Address: ":8884", TLS: withCA("require", "san")}, nil},
		{"ws with path", listener.Config{Type: "ws", Address: ":80", Path: "/x", Origins: []string{"example.com"}}, nil},
		{"proxy trusted", listener.Config{Address: ":1883", ProxyProtocol: true, ProxyTrusted: []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}}, nil},
		{"no address", listener.Config{}, []string{"listener tcp : address is required"}},
		{"unknown type", listener.Config{Type: "quic", Address: ":1"}, []string{`listener quic :1: unknown type "quic"`}},
		{"tls without files", listener.Config{Type: "tls", Address: ":8883"}, []string{"listener tls :8883: tls.cert_file is required", "tls.key_file is required"}},
		{"tls settings on tcp", listener.Config{Address: ":1", TLS: certs}, []string{"tls settings apply only to tls and wss"}},
		{"path on tcp", listener.Config{Address: ":1", Path: "/mqtt"}, []string{"path and origins apply only to ws and wss"}},
		{"relative path", listener.Config{Type: "ws", Address: ":1", Path: "mqtt"}, []string{`path "mqtt" must start with /`}},
		{"cert_username without CA", listener.Config{Type: "tls", Address: ":1", TLS: listener.TLSConfig{CertFile: "c", KeyFile: "k", CertUsername: "cn"}}, []string{"cert_username needs client_ca_file"}},
		{"require without CA", listener.Config{Type: "tls", Address: ":1", TLS: listener.TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "require"}}, []string{"client_auth require needs client_ca_file"}},
		{"CA with none", listener.Config{Type: "tls", Address: ":1", TLS: withCA("none", "")}, []string{"client_ca_file needs client_auth"}},
		{"bad client_auth", listener.Config{Type: "tls", Address: ":1", TLS: withCA("maybe", "")}, []string{`client_auth "maybe"`}},
		{"bad cert_username", listener.Config{Type: "tls", Address: ":1", TLS: withCA("require", "uid")}, []string{`cert_username "uid"`}},
		{"trusted without proxy", listener.Config{Address: ":1", ProxyTrusted: []string{"10.0.0.0/8"}}, []string{"proxy_trusted needs proxy_protocol"}},
		{"bad CIDR", listener.Config{Address: ":1", ProxyProtocol: true, ProxyTrusted: []string{"10.0.0.0/33"}}, []string{"proxy_trusted", "10.0.0.0/33"}},
		{"trusted on unix", listener.Config{Type: "unix", Address: "/tmp/s", ProxyProtocol: true, ProxyTrusted: []string{"10.0.0.1"}}, []string{"does not apply to unix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			for _, w := range tc.want {
				contains(t, err, w)
			}
			// Listen refuses it the same way, before opening anything.
			if _, lerr := listener.Listen(tc.cfg); lerr == nil || lerr.Error() != err.Error() {
				t.Fatalf("Listen: %v; want %v", lerr, err)
			}
		})
	}
}

// A missing certificate file is reported by Listen, naming the listener and
// the file.
func TestListenMissingFile(t *testing.T) {
	_, err := listener.Listen(listener.Config{Type: "tls", Address: "127.0.0.1:0",
		TLS: listener.TLSConfig{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"}})
	contains(t, err, "listener tls 127.0.0.1:0: tls cert_file: open /nonexistent/cert.pem")
}

// The YAML keys, read strictly as cmd/tern reads its configuration.
func TestYAMLKeys(t *testing.T) {
	const doc = `
type: wss
address: 0.0.0.0:8884
path: /ws
origins: [app.example.com]
tls:
  cert_file: server.pem
  key_file: server.key
  client_ca_file: clients.pem
  client_auth: require
  cert_username: cn
proxy_protocol: true
proxy_trusted: [10.0.0.0/8]
`
	var got listener.Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := listener.Config{
		Type: "wss", Address: "0.0.0.0:8884", Path: "/ws", Origins: []string{"app.example.com"},
		TLS: listener.TLSConfig{CertFile: "server.pem", KeyFile: "server.key", ClientCAFile: "clients.pem",
			ClientAuth: "require", CertUsername: "cn"},
		ProxyProtocol: true, ProxyTrusted: []string{"10.0.0.0/8"},
	}
	if g, w := yamlString(t, got), yamlString(t, want); g != w {
		t.Fatalf("decoded\n%s\nwant\n%s", g, w)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

func yamlString(t testing.TB, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
