package listener_test

import (
	"crypto/tls"
	"errors"
	"github.com/ternmq/tern/internal/testpki"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ternmq/tern/listener"
)

// serverRead accepts one connection and reports the outcome of its first
// read (which runs the server side of the TLS handshake).
func serverRead(t testing.TB, ch <-chan accepted) <-chan error {
	s := next(t, ch)
	res := make(chan error, 1)
	go func() {
		s.SetReadDeadline(time.Now().Add(timeout))
		_, err := s.Read(make([]byte, 1))
		res <- err
	}()
	return res
}

func TestTLSRefusesOldVersions(t *testing.T) {
	ca := testpki.New(t, "versions")
	srv := ca.Server("server", "server")
	l := open(t, listener.Config{Type: "tls", TLS: listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}})
	ch := acceptLoop(t, l)
	for _, tc := range []struct {
		name    string
		version uint16
		ok      bool
	}{
		{"1.0", tls.VersionTLS10, false},
		{"1.1", tls.VersionTLS11, false},
		{"1.2", tls.VersionTLS12, true},
		{"1.3", tls.VersionTLS13, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ca.ClientConfig()
			cfg.MinVersion, cfg.MaxVersion = tc.version, tc.version
			c, err := dialTLS(cfg)(t, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res := serverRead(t, ch)
			c.SetDeadline(time.Now().Add(timeout))
			_, err = c.Write([]byte("x"))
			if tc.ok {
				if err != nil {
					t.Fatalf("TLS %s refused: %v", tc.name, err)
				}
				if err := <-res; err != nil {
					t.Fatalf("server read: %v", err)
				}
				if v := c.(*tls.Conn).ConnectionState().Version; v != tc.version {
					t.Fatalf("negotiated %x", v)
				}
				return
			}
			if err == nil {
				t.Fatalf("TLS %s accepted", tc.name)
			}
			if serr := <-res; serr == nil {
				t.Fatalf("server read succeeded over TLS %s", tc.name)
			}
		})
	}
}

// mTLS: what each kind of client gets from a listener per client_auth.
func TestClientAuth(t *testing.T) {
	ca := testpki.New(t, "mtls")
	other := testpki.New(t, "other")
	srv := ca.Server("server", "server")
	good := ca.Client("good", "good", nil, nil)
	foreign := other.Client("foreign", "foreign", nil, nil)
	for _, tc := range []struct {
		name   string
		auth   string
		certs  []testpki.Issued
		accept bool
	}{
		{"require, no certificate", "require", nil, false},
		{"require, other CA", "require", []testpki.Issued{foreign}, false},
		{"require, good", "require", []testpki.Issued{good}, true},
		{"request, no certificate", "request", nil, true},
		{"request, other CA", "request", []testpki.Issued{foreign}, false},
		{"request, good", "request", []testpki.Issued{good}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t, listener.Config{Type: "tls", TLS: listener.TLSConfig{
				CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.CAFile, ClientAuth: tc.auth,
			}})
			ch := acceptLoop(t, l)
			c, err := dialTLS(ca.ClientConfig(tc.certs...))(t, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := next(t, ch)
			if tc.accept {
				roundTrip(t, c, s)
				return
			}
			// With TLS 1.3 the client learns of the refusal on its first
			// read; the server's handshake fails either way.
			go c.Write([]byte("x\n"))
			readFails(t, s)
			readFails(t, c)
		})
	}
}

// certUser is what the broker type-asserts on an accepted connection.
type certUser interface{ CertUsername() (string, bool) }

func TestCertUsername(t *testing.T) {
	ca := testpki.New(t, "names")
	srv := ca.Server("server", "server")
	both := ca.Client("both", "alice", []string{"dev-42.example"}, []string{"bob@example.com"})
	email := ca.Client("email", "carol", nil, []string{"carol@example.com"})
	noNames := ca.Client("none", "", nil, nil)
	tlsCfg := func(auth, field string) listener.TLSConfig {
		return listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.CAFile, ClientAuth: auth, CertUsername: field}
	}
	for _, kind := range []struct {
		name string
		dial func(certs ...testpki.Issued) dialer
	}{
		{"tls", func(certs ...testpki.Issued) dialer { return dialTLS(ca.ClientConfig(certs...)) }},
		{"wss", func(certs ...testpki.Issued) dialer { return dialWS(ca.ClientConfig(certs...), nil, "mqtt") }},
	} {
		for _, tc := range []struct {
			name, auth, field string
			certs             []testpki.Issued
			want              string
			ok                bool
		}{
			{"cn", "require", "cn", []testpki.Issued{both}, "alice", true},
			{"san prefers DNS", "require", "san", []testpki.Issued{both}, "dev-42.example", true},
			{"san falls back to e-mail", "require", "san", []testpki.Issued{email}, "carol@example.com", true},
			{"cn empty", "require", "cn", []testpki.Issued{noNames}, "", false},
			{"san empty", "require", "san", []testpki.Issued{noNames}, "", false},
			{"no certificate", "request", "cn", nil, "", false},
		} {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				l := open(t, listener.Config{Type: kind.name, TLS: tlsCfg(tc.auth, tc.field)})
				ch := acceptLoop(t, l)
				// CertUsername runs the handshake itself: the client must
				// not wait for the server to read first.
				type dialed struct {
					c   net.Conn
					err error
				}
				dc := make(chan dialed, 1)
				go func() {
					c, err := kind.dial(tc.certs...)(t, l.Addr().String())
					if err == nil {
						if tc, ok := c.(*tls.Conn); ok {
							err = tc.Handshake()
						}
					}
					dc <- dialed{c, err}
				}()
				s := next(t, ch)
				cu, ok := s.(certUser)
				if !ok {
					t.Fatalf("%T has no CertUsername", s)
				}
				name, ok := cu.CertUsername()
				if name != tc.want || ok != tc.ok {
					t.Fatalf("CertUsername() = %q, %v; want %q, %v", name, ok, tc.want, tc.ok)
				}
				d := <-dc
				if d.err != nil {
					t.Fatalf("dial: %v", d.err)
				}
				roundTrip(t, d.c, s)
				closeBoth(d.c, s)
			})
		}
	}
}

// Without cert_username the connections are plain: nothing names the user.
func TestNoCertUsernameWithoutSetting(t *testing.T) {
	ca := testpki.New(t, "plain")
	srv := ca.Server("server", "server")
	l := open(t, listener.Config{Type: "tls", TLS: listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}})
	ch := acceptLoop(t, l)
	c, err := dialTLS(ca.ClientConfig())(t, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := next(t, ch)
	if _, ok := s.(certUser); ok {
		t.Fatalf("%T names users although cert_username is unset", s)
	}
	if _, ok := s.(*tls.Conn); !ok {
		t.Fatalf("accepted %T; want *tls.Conn", s)
	}
}

// The certConn wrapper keeps tls.Conn's behaviour: deadlines interrupt
// reads and Close ends the connection for the peer.
func TestCertConnKeepsTLSBehaviour(t *testing.T) {
	ca := testpki.New(t, "wrap")
	srv := ca.Server("server", "server")
	cl := ca.Client("client", "dave", nil, nil)
	l := open(t, listener.Config{Type: "tls", TLS: listener.TLSConfig{
		CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.CAFile, ClientAuth: "require", CertUsername: "cn",
	}})
	ch := acceptLoop(t, l)
	c, err := dialTLS(ca.ClientConfig(cl))(t, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := next(t, ch)
	roundTrip(t, c, s)
	if st, ok := s.(interface{ ConnectionState() tls.ConnectionState }); !ok || !st.ConnectionState().HandshakeComplete {
		t.Fatalf("%T lost ConnectionState", s)
	}
	s.SetReadDeadline(time.Now().Add(-time.Second)) // already past
	_, err = s.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v; want a timeout", err)
	}
	// A TLS deadline error is permanent for the connection, so Close is
	// what is left to check.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("client read after server Close succeeded")
	}
}

func TestReload(t *testing.T) {
	ca := testpki.New(t, "reload")
	first := ca.Server("first", "first")
	second := ca.Server("second", "second")
	// The listener reads its own copies, which the test overwrites.
	dir := t.TempDir()
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	install := func(is testpki.Issued) {
		t.Helper()
		copyFile(t, is.CertFile, certFile)
		copyFile(t, is.KeyFile, keyFile)
	}
	install(first)
	for _, kind := range []struct {
		name string
		dial dialer
	}{
		{"tls", dialTLS(ca.ClientConfig())},
		{"wss", dialWS(ca.ClientConfig(), nil, "mqtt")},
	} {
		t.Run(kind.name, func(t *testing.T) {
			install(first)
			l := open(t, listener.Config{Type: kind.name, TLS: listener.TLSConfig{CertFile: certFile, KeyFile: keyFile}})
			r, ok := l.(listener.Reloader)
			if !ok {
				t.Fatalf("%T is not a Reloader", l)
			}
			ch := acceptLoop(t, l)
			served := func() (string, net.Conn, net.Conn) {
				t.Helper()
				cfg := ca.ClientConfig()
				var cn string
				cfg.VerifyConnection = func(cs tls.ConnectionState) error {
					cn = cs.PeerCertificates[0].Subject.CommonName
					return nil
				}
				cfg.ClientSessionCache = nil
				var d dialer = dialTLS(cfg)
				if kind.name == "wss" {
					d = dialWS(cfg, nil, "mqtt")
				}
				c, err := d(t, l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				s := next(t, ch)
				roundTrip(t, c, s)
				return cn, c, s
			}
			cn, oldC, oldS := served()
			if cn != "first" {
				t.Fatalf("served %q; want first", cn)
			}
			install(second)
			if err := r.Reload(); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			cn, c, s := served()
			if cn != "second" {
				t.Fatalf("after Reload served %q; want second", cn)
			}
			closeBoth(c, s)
			roundTrip(t, oldC, oldS) // the connection from before is still up

			// A broken key file is refused, naming it; the old pair stays.
			if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
				t.Fatal(err)
			}
			contains(t, r.Reload(), keyFile)
			if err := os.Remove(certFile); err != nil {
				t.Fatal(err)
			}
			contains(t, r.Reload(), certFile)
			cn, c, s = served()
			if cn != "second" {
				t.Fatalf("after failed Reload served %q; want second", cn)
			}
			closeBoth(c, s)
			closeBoth(oldC, oldS)
			install(first)
		})
	}
}

// Reloading the client CA bundle changes which client certificates pass.
func TestReloadClientCA(t *testing.T) {
	oldCA := testpki.New(t, "old")
	newCA := testpki.New(t, "new")
	srv := oldCA.Server("server", "server")
	oldClient := oldCA.Client("oldclient", "old", nil, nil)
	newClient := newCA.Client("newclient", "new", nil, nil)
	caFile := t.TempDir() + "/clients.pem"
	copyFile(t, oldCA.CAFile, caFile)
	l := open(t, listener.Config{Type: "tls", TLS: listener.TLSConfig{
		CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: caFile, ClientAuth: "require", CertUsername: "cn",
	}})
	ch := acceptLoop(t, l)
	// Each client keeps its session tickets: one from before the reload
	// must not let the old certificate back in.
	caches := map[string]tls.ClientSessionCache{}
	var resumed []bool
	try := func(cl testpki.Issued) error {
		t.Helper()
		cfg := oldCA.ClientConfig(cl)
		if caches[cl.CertFile] == nil {
			caches[cl.CertFile] = tls.NewLRUClientSessionCache(4)
		}
		cfg.ClientSessionCache = caches[cl.CertFile]
		c, err := dialTLS(cfg)(t, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := next(t, ch)
		defer s.Close()
		res := make(chan error, 1)
		go func() { res <- exchange(c, s, "hello\n") }()
		err = <-res
		if err == nil {
			// Read once more so that a TLS 1.3 ticket is stored.
			err = exchange(s, c, "bye\n")
			resumed = append(resumed, c.(*tls.Conn).ConnectionState().DidResume)
		}
		return err
	}
	if err := try(oldClient); err != nil {
		t.Fatalf("old client before reload: %v", err)
	}
	if err := try(oldClient); err != nil {
		t.Fatalf("old client again: %v", err)
	}
	if !resumed[1] {
		t.Fatal("the second connection did not resume: the test would not cover resumption")
	}
	if err := try(newClient); err == nil {
		t.Fatal("new client accepted before reload")
	}
	copyFile(t, newCA.CAFile, caFile)
	if err := l.(listener.Reloader).Reload(); err != nil {
		t.Fatal(err)
	}
	if err := try(newClient); err != nil {
		t.Fatalf("new client after reload: %v", err)
	}
	if err := try(oldClient); err == nil {
		t.Fatal("old client accepted after reload (session resumption?)")
	}
	// A CA file without certificates is refused, naming it.
	if err := os.WriteFile(caFile, []byte("nothing"), 0o600); err != nil {
		t.Fatal(err)
	}
	contains(t, l.(listener.Reloader).Reload(), caFile)
	if err := try(newClient); err != nil {
		t.Fatalf("new client after failed reload: %v", err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
