package scram

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ternmq/tern/auth"
)

// RFC 7677 section 3 test vector.
const (
	vecUser        = "user"
	vecPassword    = "pencil"
	vecClientNonce = "rOprNGfwEbeRWgbNEkqO"
	vecServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	vecSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	vecClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	vecServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	vecClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	vecServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

// vecCred is derived once: PBKDF2 is the slow part of every test.
var vecCred = func() Credentials {
	salt, err := base64.StdEncoding.DecodeString(vecSalt)
	if err != nil {
		panic(err)
	}
	c, err := deriveCredentials(vecPassword, salt, 4096)
	if err != nil {
		panic(err)
	}
	return c
}()

func vecLookup(name string) (Credentials, bool) {
	if name == vecUser {
		return vecCred, true
	}
	return Credentials{}, false
}

// vecServer is a server with the RFC's server nonce.
func vecServer(opts ...Option) *Server {
	s := NewServer(vecLookup, opts...)
	s.nonce = func() string { return vecServerNonce }
	return s
}

func vecClient(user, password string) *Client {
	c := NewClient(user, password)
	c.nonce = func() string { return vecClientNonce }
	return c
}

func TestRFC7677Vector(t *testing.T) {
	ctx := context.Background()
	c := vecClient(vecUser, vecPassword)
	if got := string(c.First()); got != vecClientFirst {
		t.Fatalf("client-first = %q, want %q", got, vecClientFirst)
	}
	ex, err := vecServer().Start(ctx, &auth.Client{})
	if err != nil {
		t.Fatal(err)
	}
	out, done, err := ex.Step(ctx, c.First())
	if err != nil || done || string(out) != vecServerFirst {
		t.Fatalf("server-first = %q, %v, %v; want %q", out, done, err, vecServerFirst)
	}
	final, err := c.Final(out)
	if err != nil || string(final) != vecClientFinal {
		t.Fatalf("client-final = %q, %v; want %q", final, err, vecClientFinal)
	}
	out, done, err = ex.Step(ctx, final)
	if err != nil || !done || string(out) != vecServerFinal {
		t.Fatalf("server-final = %q, %v, %v; want %q", out, done, err, vecServerFinal)
	}
	if err := c.Verify(out); err != nil {
		t.Fatal(err)
	}
	if ex.Username() != vecUser {
		t.Fatalf("Username() = %q", ex.Username())
	}
}

// drive runs an exchange the way the broker does: Start, Step with the
// CONNECT data, then Step with each AUTH 0x18 until done or error. It
// returns the server's exchange, its final data and the error.
func drive(t *testing.T, a auth.EnhancedAuthenticator, c *Client, ac *auth.Client) (auth.Exchange, []byte, error) {
	t.Helper()
	ctx := context.Background()
	ex, err := a.Start(ctx, ac)
	if err != nil {
		return nil, nil, err
	}
	in := c.First()
	for round := 0; ; round++ {
		if round > 3 {
			t.Fatal("exchange does not end")
		}
		out, done, err := ex.Step(ctx, in)
		if err != nil {
			if out != nil {
				t.Errorf("Step returned data %q with error", out)
			}
			if ex.Username() != "" {
				t.Errorf("Username() = %q after failure", ex.Username())
			}
			return ex, nil, err
		}
		if done {
			return ex, out, nil
		}
		if in, err = c.Final(out); err != nil {
			t.Fatalf("client rejected server-first %q: %v", out, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	users := map[string]string{}
	creds := map[string]Credentials{}
	for _, u := range []struct{ name, pw string }{
		{"alice", "correct horse battery staple"},
		{"a,b=c", "pw"},        // escaped as a=2Cb=3Dc
		{"=2C", "literal"},     // must not be decoded twice
		{"Ünïcødé 名前", "päss"}, // UTF-8 names
		{"empty-password", ""},
	} {
		cr, err := NewCredentials(u.pw, MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		users[u.name], creds[u.name] = u.pw, cr
	}
	var a auth.EnhancedAuthenticator = NewServer(func(n string) (Credentials, bool) {
		c, ok := creds[n]
		return c, ok
	})
	if a.Method() != "SCRAM-SHA-256" {
		t.Fatalf("Method() = %q", a.Method())
	}
	for name, pw := range users {
		t.Run(name, func(t *testing.T) {
			c := NewClient(name, pw)
			ex, final, err := drive(t, a, c, &auth.Client{ClientID: "x"})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Verify(final); err != nil {
				t.Fatal(err)
			}
			if ex.Username() != name {
				t.Fatalf("Username() = %q, want %q", ex.Username(), name)
			}
			// Re-authentication: the broker now knows the identity; the
			// same user passes again, another user's credentials do not.
			known := &auth.Client{ClientID: "x", Username: ex.Username(), UsernameFlag: true}
			if _, _, err := drive(t, a, NewClient(name, pw), known); err != nil {
				t.Fatalf("re-auth: %v", err)
			}
			_, _, err = drive(t, a, NewClient("alice", users["alice"]), known)
			if name != "alice" && !errors.Is(err, auth.ErrNotAuthorized) {
				t.Fatalf("re-auth as another user: err = %v, want ErrNotAuthorized", err)
			}
		})
	}
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	s := vecServer(WithSecret(secret))
	ctx := context.Background()

	first := func(user string) string {
		ex, _ := s.Start(ctx, &auth.Client{})
		out, _, err := ex.Step(ctx, vecClient(user, "x").First())
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// The server-first-message has the same shape for both, and the fake
	// salt is stable per user (a real user's salt is too), even across
	// servers sharing the secret.
	known, fake := first(vecUser), first("nobody")
	shape := func(m string) string {
		_, salt, iter, err := parseServerFirst(m)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join([]string{m[:2], base64.StdEncoding.EncodeToString(make([]byte, len(salt))), strconv.Itoa(iter)}, "|")
	}
	if shape(known) != shape(fake) {
		t.Fatalf("server-first differs in shape: %q vs %q", known, fake)
	}
	if fake != first("nobody") || fake != vecServerFirstFor(t, NewServer(vecLookup, WithSecret(secret)), "nobody") {
		t.Fatal("fake salt is not deterministic")
	}
	if fake == first("nobody2") {
		t.Fatal("fake salt does not depend on the user")
	}

	_, _, errWrong := drive(t, s, NewClient(vecUser, "wrong"), &auth.Client{})
	_, _, errUnknown := drive(t, s, NewClient("nobody", vecPassword), &auth.Client{})
	for _, err := range []error{errWrong, errUnknown} {
		if !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("err = %v, want ErrBadCredentials", err)
		}
	}
	if errWrong.Error() != errUnknown.Error() {
		t.Fatalf("errors differ: %q vs %q", errWrong, errUnknown)
	}
}

func vecServerFirstFor(t *testing.T, s *Server, user string) string {
	s.nonce = func() string { return vecServerNonce }
	ex, _ := s.Start(context.Background(), nil)
	out, _, err := ex.Step(context.Background(), vecClient(user, "").First())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestMalformedClientFirst(t *testing.T) {
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"gs2 only", "n,,"},
		{"bad gs2 flag", "x,,n=user,r=abc"},
		{"channel binding", "p=tls-unique,,n=user,r=abc"},
		{"authzid", "n,a=admin,n=user,r=abc"},
		{"missing gs2", "n=user,r=abc"},
		{"order", "n,,r=abc,n=user"},
		{"no nonce", "n,,n=user"},
		{"empty nonce", "n,,n=user,r="},
		{"comma in nonce", "n,,n=user,r=a,,"},
		{"space in nonce", "n,,n=user,r=a b"},
		{"empty user", "n,,n=,r=abc"},
		{"bad escape", "n,,n=us=2Xer,r=abc"},
		{"truncated escape", "n,,n=user=2,r=abc"},
		{"lone =", "n,,n=user=,r=abc"},
		{"control char", "n,,n=us\x01er,r=abc"},
		{"not utf-8", "n,,n=us\xffer,r=abc"},
		{"mandatory ext", "n,,m=x,n=user,r=abc"},
		{"bare attribute", "n,,n=user,r=abc,junk"},
		{"long key", "n,,nn=user,r=abc"},
		{"too long", "n,,n=user,r=" + strings.Repeat("a", maxMessage)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, _ := vecServer().Start(context.Background(), &auth.Client{})
			out, done, err := ex.Step(context.Background(), []byte(tc.msg))
			if !errors.Is(err, auth.ErrBadCredentials) || done || out != nil {
				t.Fatalf("Step(%q) = %q, %v, %v; want ErrBadCredentials", tc.msg, out, done, err)
			}
			// A failed exchange stays failed.
			if _, _, err := ex.Step(context.Background(), []byte(vecClientFirst)); !errors.Is(err, auth.ErrBadCredentials) {
				t.Fatalf("Step after failure: %v", err)
			}
		})
	}
}

func TestMalformedClientFinal(t *testing.T) {
	const nonce = vecClientNonce + vecServerNonce
	const proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"no proof", "c=biws,r=" + nonce},
		{"proof not last", "c=biws,r=" + nonce + "," + proof + ",x=1"},
		{"proof first", proof + ",c=biws,r=" + nonce},
		{"wrong channel binding", "c=eSws,r=" + nonce + "," + proof},
		{"channel binding not base64", "c=biws!,r=" + nonce + "," + proof},
		{"client nonce only", "c=biws,r=" + vecClientNonce + "," + proof},
		{"other nonce", "c=biws,r=" + nonce + "x," + proof},
		{"no nonce", "c=biws," + proof},
		{"proof not base64", "c=biws,r=" + nonce + ",p=***"},
		{"proof too short", "c=biws,r=" + nonce + ",p=AAAA"},
		{"proof non-canonical", "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR="},
		{"extension changes proof", "c=biws,r=" + nonce + ",x=y," + proof},
		{"wrong proof", "c=biws,r=" + nonce + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 32))},
		{"garbage", "\x00\xff,,=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ex, _ := vecServer().Start(ctx, &auth.Client{})
			if _, _, err := ex.Step(ctx, []byte(vecClientFirst)); err != nil {
				t.Fatal(err)
			}
			out, done, err := ex.Step(ctx, []byte(tc.msg))
			if !errors.Is(err, auth.ErrBadCredentials) || done || out != nil {
				t.Fatalf("Step(%q) = %q, %v, %v; want ErrBadCredentials", tc.msg, out, done, err)
			}
			// No second chance with the right message.
			if _, done, err := ex.Step(ctx, []byte(vecClientFinal)); err == nil || done {
				t.Fatal("exchange accepted a retry after failure")
			}
		})
	}
}

func TestStepAfterDone(t *testing.T) {
	ctx := context.Background()
	ex, _ := vecServer().Start(ctx, &auth.Client{})
	for _, m := range []string{vecClientFirst, vecClientFinal} {
		if _, _, err := ex.Step(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{vecClientFinal, vecClientFirst, ""} {
		if out, done, err := ex.Step(ctx, []byte(m)); !errors.Is(err, auth.ErrBadCredentials) || done || out != nil {
			t.Fatalf("Step(%q) after done = %q, %v, %v", m, out, done, err)
		}
	}
	if ex.Username() != vecUser {
		t.Fatalf("Username() = %q after done", ex.Username())
	}
}

func TestChannelBindingFlagY(t *testing.T) {
	// "y,,": the client could bind but believes we cannot. We cannot, so
	// it is accepted, and c= must echo "y,," (eSws).
	ctx := context.Background()
	ex, _ := vecServer().Start(ctx, &auth.Client{})
	if _, _, err := ex.Step(ctx, []byte("y,,n=user,r="+vecClientNonce)); err != nil {
		t.Fatal(err)
	}
	_, _, err := ex.Step(ctx, []byte(strings.Replace(vecClientFinal, "c=biws", "c=eSws", 1)))
	// The proof was computed for "n,,", so it must fail at the proof, not
	// before: the header was checked and echoed correctly.
	if !errors.Is(err, auth.ErrBadCredentials) || !strings.Contains(err.Error(), "invalid proof") {
		t.Fatalf("err = %v, want invalid proof", err)
	}
}

func TestUsernameBinding(t *testing.T) {
	s := vecServer()
	_, _, err := drive(t, s, NewClient(vecUser, vecPassword), &auth.Client{Username: "other", UsernameFlag: true})
	if !errors.Is(err, auth.ErrNotAuthorized) {
		t.Fatalf("err = %v, want ErrNotAuthorized", err)
	}
	if _, _, err := drive(t, s, NewClient(vecUser, vecPassword), &auth.Client{Username: vecUser, UsernameFlag: true}); err != nil {
		t.Fatal(err)
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ex, _ := vecServer().Start(ctx, nil)
	if _, _, err := ex.Step(ctx, []byte(vecClientFirst)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestUnusableStoredCredentials(t *testing.T) {
	weak := vecCred
	weak.Iterations = 1000
	for name, cr := range map[string]Credentials{
		"weak":     weak,
		"no salt":  {Iterations: 4096, StoredKey: vecCred.StoredKey, ServerKey: vecCred.ServerKey},
		"no keys":  {Salt: vecCred.Salt, Iterations: 4096},
		"zero val": {},
	} {
		t.Run(name, func(t *testing.T) {
			s := NewServer(func(string) (Credentials, bool) { return cr, true })
			ex, _ := s.Start(context.Background(), nil)
			_, _, err := ex.Step(context.Background(), []byte(vecClientFirst))
			// A store fault: an error, but not the client's fault.
			if err == nil || errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, auth.ErrNotAuthorized) {
				t.Fatalf("err = %v, want a server error", err)
			}
		})
	}
}

func TestNewCredentials(t *testing.T) {
	if _, err := NewCredentials("pw", MinIterations-1); err == nil {
		t.Fatal("accepted too few iterations")
	}
	a, err := NewCredentials("pw", MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewCredentials("pw", MinIterations)
	if len(a.Salt) != 16 || string(a.Salt) == string(b.Salt) {
		t.Fatalf("salts %x, %x: want 16 random bytes", a.Salt, b.Salt)
	}
	text, err := a.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var c Credentials
	if err := c.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if string(c.Salt) != string(a.Salt) || c.Iterations != a.Iterations ||
		string(c.StoredKey) != string(a.StoredKey) || string(c.ServerKey) != string(a.ServerKey) {
		t.Fatalf("round trip: %+v != %+v", c, a)
	}
	for _, bad := range []string{
		"", "SCRAM-SHA-256$", "MD5$4096:AA==$AA==:AA==", "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AA==:AA==",
		"SCRAM-SHA-256$100:" + strings.TrimPrefix(string(text), "SCRAM-SHA-256$4096:"),
		"SCRAM-SHA-256$x:" + strings.TrimPrefix(string(text), "SCRAM-SHA-256$4096:"),
		strings.Replace(string(text), "$", "", 2),
	} {
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
}

func TestClientRejectsServer(t *testing.T) {
	const n = vecClientNonce + "srv"
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"nonce not extended", "r=" + vecClientNonce + ",s=" + vecSalt + ",i=4096"},
		{"nonce replaced", "r=somethingelse,s=" + vecSalt + ",i=4096"},
		{"few iterations", "r=" + n + ",s=" + vecSalt + ",i=4095"},
		{"many iterations", "r=" + n + ",s=" + vecSalt + ",i=99999999999"},
		{"signed count", "r=" + n + ",s=" + vecSalt + ",i=+4096"},
		{"leading zero", "r=" + n + ",s=" + vecSalt + ",i=04096"},
		{"empty salt", "r=" + n + ",s=,i=4096"},
		{"bad salt", "r=" + n + ",s=***,i=4096"},
		{"missing count", "r=" + n + ",s=" + vecSalt},
		{"mandatory ext", "m=x,r=" + n + ",s=" + vecSalt + ",i=4096"},
		{"order", "s=" + vecSalt + ",r=" + n + ",i=4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := vecClient(vecUser, vecPassword)
			c.First()
			if _, err := c.Final([]byte(tc.msg)); err == nil {
				t.Fatalf("Final(%q) succeeded", tc.msg)
			}
		})
	}
}

func TestClientVerify(t *testing.T) {
	fresh := func() *Client {
		c := vecClient(vecUser, vecPassword)
		c.First()
		if _, err := c.Final([]byte(vecServerFirst)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := fresh().Verify([]byte("v=" + base64.StdEncoding.EncodeToString(make([]byte, 32)))); !errors.Is(err, ErrServerSignature) {
		t.Fatalf("wrong signature: %v", err)
	}
	if err := fresh().Verify([]byte("e=invalid-proof")); err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Fatalf("server error: %v", err)
	}
	for _, m := range []string{"", "x=1", "v=***", "v"} {
		if err := fresh().Verify([]byte(m)); err == nil {
			t.Fatalf("Verify(%q) succeeded", m)
		}
	}
	c := fresh()
	if err := c.Verify([]byte(vecServerFinal)); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify([]byte(vecServerFinal)); err == nil {
		t.Fatal("second Verify succeeded")
	}
	if _, err := c.Final([]byte(vecServerFirst)); err == nil {
		t.Fatal("second Final succeeded")
	}
	if _, err := NewClient("u", "p").Final([]byte(vecServerFirst)); err == nil {
		t.Fatal("Final before First succeeded")
	}
	if err := NewClient("u", "p").Verify([]byte(vecServerFinal)); err == nil {
		t.Fatal("Verify before Final succeeded")
	}
}

func TestEscapeName(t *testing.T) {
	for _, name := range []string{"user", "a,b", "a=b", "=2C", ",,==", "Ünï"} {
		esc := escapeName(name)
		if strings.ContainsRune(esc, ',') {
			t.Errorf("escapeName(%q) = %q contains ','", name, esc)
		}
		if got, err := unescapeName(esc); err != nil || got != name {
			t.Errorf("unescapeName(%q) = %q, %v; want %q", esc, got, err, name)
		}
	}
}
