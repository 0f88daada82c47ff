package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternmq/tern/admin"
	"github.com/ternmq/tern/auth"
	authfile "github.com/ternmq/tern/auth/file"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// authFiles writes a password file (users name -> password) and an ACL
// file into dir.
func authFiles(t *testing.T, dir string, users map[string]string, acl string) (pwPath, aclPath string) {
	t.Helper()
	pwPath, aclPath = filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	for name, pw := range users {
		setPassword(t, pwPath, name, pw)
	}
	writeACL(t, aclPath, acl)
	return pwPath, aclPath
}

func setPassword(t *testing.T, path, user, pw string) {
	t.Helper()
	h, err := authfile.HashPassword(pw, authfile.Argon2id)
	if err != nil {
		t.Fatal(err)
	}
	if err := authfile.SetPassword(path, user, h); err != nil {
		t.Fatal(err)
	}
}

func writeACL(t *testing.T, path, text string) {
	t.Helper()
	// Replace, as an editor saving the file would.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startServeReload starts serve with a trigger standing in for SIGHUP;
// reload returns what the reload said.
func startServeReload(t *testing.T, cfg Config) (addr string, reload func() error) {
	t.Helper()
	sig, result := make(chan os.Signal), make(chan error)
	rl := &reloader{signals: sig, after: func(err error) { result <- err },
		options: func() (broker.Options, admin.Auth, error) {
			o, err := brokerOptions(cfg, discard)
			return o, admin.Auth{}, err
		}}
	addr = startServeWith(t, cfg, rl)
	return addr, func() error { sig <- syscall.SIGHUP; return <-result }
}

func connectAs(t *testing.T, addr string, v byte, id, user, pw string) (*mt.Raw, *packet.Connack) {
	t.Helper()
	r := mt.Dial(t, addr, v)
	return r, r.ConnectWith(&packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: user, PasswordFlag: true, Password: []byte(pw)})
}

// publish1 publishes at QoS 1 and returns the PUBACK's reason code.
func publish1(t *testing.T, r *mt.Raw, id uint16, topic string, retain bool) packet.ReasonCode {
	t.Helper()
	r.Send(&packet.Publish{QoS: 1, PacketID: id, Topic: topic, Retain: retain, Payload: []byte(topic)})
	ack := mt.Expect[*packet.Puback](r)
	if ack.PacketID != id {
		t.Fatalf("PUBACK for %d, want %d", ack.PacketID, id)
	}
	return ack.ReasonCode
}

// nextTopic returns the topic of the next PUBLISH r receives. Tests check
// that a message did not arrive by publishing a marker after it: the
// marker must be next, so no waiting is needed.
func nextTopic(t *testing.T, r *mt.Raw) string {
	t.Helper()
	return mt.Expect[*packet.Publish](r).Topic
}

const e2eACL = `user alice
topic readwrite alice/#
topic write news/#

user bob
topic read alice/#
topic deny alice/private/#
topic readwrite bob/#
`

func TestServeFileAuth(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		pwPath, aclPath := authFiles(t, t.TempDir(), map[string]string{"alice": "alice-pw", "bob": "bob-pw"}, e2eACL)
		cfg := defaultConfig()
		cfg.Listeners[0].Address = "127.0.0.1:0"
		cfg.PasswordFile, cfg.ACLFile = pwPath, aclPath
		addr, reload := startServeReload(t, cfg)
		v5 := v == packet.V5
		code := func(v311, v5code packet.ReasonCode) packet.ReasonCode {
			if v5 {
				return v5code
			}
			return v311
		}

		// Wrong password, unknown user, anonymous: refused.
		if _, ack := connectAs(t, addr, v, "x1", "alice", "wrong"); ack.ReasonCode != code(packet.RefusedBadUsernamePassword, packet.BadUsernameOrPassword) {
			t.Fatalf("wrong password: CONNACK %#x", ack.ReasonCode)
		}
		if _, ack := connectAs(t, addr, v, "x2", "mallory", "alice-pw"); ack.ReasonCode != code(packet.RefusedBadUsernamePassword, packet.BadUsernameOrPassword) {
			t.Fatalf("unknown user: CONNACK %#x", ack.ReasonCode)
		}
		if ack := mt.Dial(t, addr, v).Connect("anon", true); ack.ReasonCode != code(packet.RefusedNotAuthorized, packet.NotAuthorized) {
			t.Fatalf("anonymous: CONNACK %#x", ack.ReasonCode)
		}

		alice, ack := connectAs(t, addr, v, "alice-1", "alice", "alice-pw")
		if ack.ReasonCode != packet.Success {
			t.Fatalf("alice: CONNACK %#x", ack.ReasonCode)
		}
		// Retained messages before bob subscribes: one he may read, one
		// he may not.
		for i, tp := range []string{"alice/private/r", "alice/public/r"} {
			if rc := publish1(t, alice, uint16(1+i), tp, true); rc != packet.Success {
				t.Fatalf("retained publish to %s: PUBACK %#x", tp, rc)
			}
		}

		bob, ack := connectAs(t, addr, v, "bob-1", "bob", "bob-pw")
		if ack.ReasonCode != packet.Success {
			t.Fatalf("bob: CONNACK %#x", ack.ReasonCode)
		}
		// SUBACK: granted for what bob may read, refused for the rest.
		sa := bob.Subscribe(1, 0, "alice/#", "secret/#", "alice/private/#", "bob/#")
		want := []packet.ReasonCode{packet.Success, code(packet.SubackFailure, packet.NotAuthorized),
			code(packet.SubackFailure, packet.NotAuthorized), packet.Success}
		if !slices.Equal(sa.ReasonCodes, want) {
			t.Fatalf("SUBACK %#x, want %#x", sa.ReasonCodes, want)
		}
		// The read-denied retained message is not delivered: everything
		// the subscription brought arrives before the PINGRESP.
		bob.Send(&packet.Pingreq{})
		var got []string
		for {
			p := bob.Read()
			if _, ok := p.(*packet.Pingresp); ok {
				break
			}
			pub, ok := p.(*packet.Publish)
			if !ok {
				t.Fatalf("got %s, want PUBLISH or PINGRESP", p.Type())
			}
			got = append(got, pub.Topic)
		}
		if !slices.Equal(got, []string{"alice/public/r"}) {
			t.Fatalf("retained messages delivered: %q, want only alice/public/r", got)
		}

		// A publish alice may not make is dropped: acknowledged on 3.1.1
		// [MQTT-3.3.5-2], refused with 0x87 on 5.0; bob, subscribed to
		// bob/#, never sees it. A live message on a read-denied topic is
		// withheld from bob too.
		if rc := publish1(t, alice, 3, "bob/inbox", false); rc != code(packet.Success, packet.NotAuthorized) {
			t.Fatalf("denied publish: PUBACK %#x", rc)
		}
		if rc := publish1(t, alice, 4, "alice/private/live", false); rc != packet.Success {
			t.Fatalf("alice/private/live: PUBACK %#x", rc)
		}
		if rc := publish1(t, alice, 5, "alice/marker1", false); rc != packet.Success {
			t.Fatalf("marker: PUBACK %#x", rc)
		}
		if tp := nextTopic(t, bob); tp != "alice/marker1" {
			t.Fatalf("bob received %s, want alice/marker1 (the denied messages dropped)", tp)
		}
		// Bob may not publish to news/ yet.
		if rc := publish1(t, bob, 1, "news/today", false); rc != code(packet.Success, packet.NotAuthorized) {
			t.Fatalf("bob to news before reload: PUBACK %#x", rc)
		}

		// Edit both files and reload; nobody reconnects.
		setPassword(t, pwPath, "alice", "alice-new")
		writeACL(t, aclPath, `user alice
topic readwrite alice/#

user bob
topic read alice/public/#
topic readwrite bob/#
topic write news/#
`)
		if err := reload(); err != nil {
			t.Fatal(err)
		}
		if _, ack := connectAs(t, addr, v, "alice-2", "alice", "alice-pw"); ack.ReasonCode != code(packet.RefusedBadUsernamePassword, packet.BadUsernameOrPassword) {
			t.Fatalf("old password after reload: CONNACK %#x", ack.ReasonCode)
		}
		if _, ack := connectAs(t, addr, v, "alice-3", "alice", "alice-new"); ack.ReasonCode != packet.Success {
			t.Fatalf("new password after reload: CONNACK %#x", ack.ReasonCode)
		}
		// Bob's subscription alice/# stays, but he may now read only
		// alice/public/...: alice/x is withheld, the marker is not.
		if rc := publish1(t, alice, 6, "alice/x", false); rc != packet.Success {
			t.Fatalf("alice/x: PUBACK %#x", rc)
		}
		if rc := publish1(t, alice, 7, "alice/public/marker2", false); rc != packet.Success {
			t.Fatalf("marker: PUBACK %#x", rc)
		}
		if tp := nextTopic(t, bob); tp != "alice/public/marker2" {
			t.Fatalf("bob received %s after reload, want alice/public/marker2", tp)
		}
		// And he may now publish to news/, on the same connection.
		if rc := publish1(t, bob, 2, "news/today", false); rc != packet.Success {
			t.Fatalf("bob to news after reload: PUBACK %#x", rc)
		}

		// A broken edit: reload reports it, the rules in force stay.
		writeACL(t, aclPath, "user bob\ntopic everything #\n")
		if err := reload(); err == nil || !strings.Contains(err.Error(), aclPath+":2:") {
			t.Fatalf("reload of a broken ACL: %v", err)
		}
		if rc := publish1(t, bob, 3, "news/tomorrow", false); rc != packet.Success {
			t.Fatalf("bob to news after a failed reload: PUBACK %#x", rc)
		}
	}, packet.V311, packet.V5)
}

// TestServeAuthConfig runs the auth settings through the configuration
// file and brokerOptions, as `tern serve` does.
func TestServeAuthConfig(t *testing.T) {
	dir := t.TempDir()
	pwPath, aclPath := authFiles(t, dir, map[string]string{"carol": "carol-pw"}, "user carol\ntopic read c/#\nuser dave\ntopic read d/#\n")
	cfg := defaultConfig()
	text := "listeners:\n  - address: 127.0.0.1:0\n" +
		"users:\n  dave: dave-pw\n" +
		"password_file: " + pwPath + "\nacl_file: " + aclPath + "\n"
	if err := loadConfig(writeConfig(t, text), &cfg); err != nil {
		t.Fatal(err)
	}
	addr := startServe(t, cfg)
	mt.Versions(t, func(t *testing.T, v byte) {
		if _, ack := connectAs(t, addr, v, "c0", "carol", "nope"); ack.ReasonCode == packet.Accepted {
			t.Fatal("wrong password accepted")
		}
		// A password-file user and a users-table user both get in.
		carol, ack := connectAs(t, addr, v, "c1", "carol", "carol-pw")
		if ack.ReasonCode != packet.Accepted {
			t.Fatalf("carol: CONNACK %#x", ack.ReasonCode)
		}
		dave, ack := connectAs(t, addr, v, "d1", "dave", "dave-pw")
		if ack.ReasonCode != packet.Accepted {
			t.Fatalf("dave: CONNACK %#x", ack.ReasonCode)
		}
		if sa := carol.Subscribe(1, 0, "c/#", "d/#"); sa.ReasonCodes[0] != packet.Success || !sa.ReasonCodes[1].IsFailure() {
			t.Fatalf("carol SUBACK %#x", sa.ReasonCodes)
		}
		if sa := dave.Subscribe(1, 0, "d/#", "c/#"); sa.ReasonCodes[0] != packet.Success || !sa.ReasonCodes[1].IsFailure() {
			t.Fatalf("dave SUBACK %#x", sa.ReasonCodes)
		}
		if ack := mt.Dial(t, addr, v).Connect("anon", true); ack.ReasonCode == packet.Accepted {
			t.Fatal("anonymous accepted")
		}
	}, packet.V311, packet.V5)
}

func TestBuildAuth(t *testing.T) {
	dir := t.TempDir()
	pwPath, aclPath := authFiles(t, dir, map[string]string{"carol": "carol-pw"}, "user carol\ntopic read c/#\n")
	yes, no := true, false
	anonClient := &auth.Client{ClientID: "a"}
	carol := &auth.Client{ClientID: "c", Username: "carol", UsernameFlag: true, Password: []byte("carol-pw")}
	dave := &auth.Client{ClientID: "d", Username: "dave", UsernameFlag: true, Password: []byte("dave-pw")}
	cases := []struct {
		name              string
		cfg               Config
		anon, carol, dave bool // accepted?
		carolReads        bool // may carol read c/x?
		daveReadsAnything bool
		wantEnhanced      int
	}{
		// As before password files: with no users, a client that sends a
		// username is refused.
		{"nothing configured: anonymous only", Config{}, true, false, false, true, true, 0},
		{"anonymous switched off", Config{AllowAnonymous: &no}, false, false, false, true, true, 0},
		{"users", Config{Users: map[string]string{"dave": "dave-pw"}}, false, false, true, true, true, 1},
		{"password file", Config{PasswordFile: pwPath}, false, true, false, true, true, 0},
		{"password file, anonymous on", Config{PasswordFile: pwPath, AllowAnonymous: &yes}, true, true, false, true, true, 0},
		{"both", Config{PasswordFile: pwPath, Users: map[string]string{"dave": "dave-pw"}}, false, true, true, true, true, 1},
		{"acl file", Config{PasswordFile: pwPath, ACLFile: aclPath}, false, true, false, true, false, 0},
		{"http acl only keeps anonymous", Config{HTTPAuth: &HTTPAuth{ACLURL: "http://127.0.0.1:1/acl", CacheTTL: -1, Timeout: time.Second}},
			true, false, false, false, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			authn, authz, enhanced, err := buildAuth(tc.cfg, discard)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, c := range []struct {
				who  *auth.Client
				want bool
			}{{anonClient, tc.anon}, {carol, tc.carol}, {dave, tc.dave}} {
				if err := authn.Authenticate(ctx, c.who); (err == nil) != c.want {
					t.Errorf("%q: Authenticate = %v, want accepted %v", c.who.Username, err, c.want)
				}
			}
			if got := authz.Authorize(carol, auth.Read, "c/x"); got != tc.carolReads {
				t.Errorf("carol reads c/x: %v, want %v", got, tc.carolReads)
			}
			if got := authz.Authorize(dave, auth.Read, "z"); got != tc.daveReadsAnything {
				t.Errorf("dave reads z: %v, want %v", got, tc.daveReadsAnything)
			}
			if len(enhanced) != tc.wantEnhanced {
				t.Errorf("%d enhanced authenticators, want %d", len(enhanced), tc.wantEnhanced)
			}
		})
	}
}

func TestBuildAuthErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("what is this\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"missing password file", Config{PasswordFile: filepath.Join(dir, "none")}, "password_file"},
		{"bad password file", Config{PasswordFile: bad}, bad + ":1:"},
		{"bad acl file", Config{ACLFile: bad}, bad + ":1:"},
		{"http without urls", Config{HTTPAuth: &HTTPAuth{}}, "http_auth: want url"},
		{"http bad url", Config{HTTPAuth: &HTTPAuth{URL: "localhost/auth"}}, "http_auth"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := buildAuth(tc.cfg, discard)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			// brokerOptions reports it too.
			cfg := defaultConfig()
			cfg.PasswordFile, cfg.ACLFile, cfg.HTTPAuth = tc.cfg.PasswordFile, tc.cfg.ACLFile, tc.cfg.HTTPAuth
			if _, err := brokerOptions(cfg, discard); err == nil {
				t.Fatal("brokerOptions accepted it")
			}
		})
	}
}

// anyOf: the first acceptance wins; a failure outranks a refusal.
func TestAnyOf(t *testing.T) {
	fail := errors.New("backend down")
	cases := []struct {
		name    string
		results []error
		want    error
	}{
		{"one accepts", []error{auth.ErrBadCredentials, nil}, nil},
		{"all refuse", []error{auth.ErrNotAuthorized, auth.ErrBadCredentials}, auth.ErrBadCredentials},
		{"not authorized", []error{auth.ErrNotAuthorized}, auth.ErrNotAuthorized},
		{"failure outranks refusal", []error{auth.ErrBadCredentials, fail}, fail},
		{"failure but one accepts", []error{fail, nil}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a anyOf
			for _, r := range tc.results {
				a.backends = append(a.backends, fixed{r})
			}
			err := a.Authenticate(context.Background(), &auth.Client{Username: "u", UsernameFlag: true})
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Authenticate = %v, want %v", err, tc.want)
			}
		})
	}
}

type fixed struct{ err error }

func (f fixed) Authenticate(context.Context, *auth.Client) error { return f.err }

// idAuthz is an authorizer with a fixed client id decision; it counts the
// times it is asked.
type idAuthz struct {
	d     auth.ClientIDDecision
	err   error
	asked *int
}

func (idAuthz) Authorize(*auth.Client, auth.Action, string) bool { return true }

func (z idAuthz) AuthorizeClientID(context.Context, *auth.Client) (auth.ClientIDDecision, error) {
	*z.asked++
	return z.d, z.err
}

// allOf: a refusal outranks a failure, a failure a grant, a grant the
// default; authorizers without an opinion on client ids are left out.
func TestAllOfClientID(t *testing.T) {
	const def, allowed, denied = auth.ClientIDDefault, auth.ClientIDAllowed, auth.ClientIDDenied
	fail := errors.New("service down")
	type answer struct {
		d   auth.ClientIDDecision
		err error
	}
	cases := []struct {
		name      string
		answers   []answer
		plain     bool // an authorizer that is no ConnectAuthorizer comes first
		want      auth.ClientIDDecision
		wantErr   bool
		wantAsked int
	}{
		{"all default", []answer{{def, nil}, {def, nil}}, false, def, false, 2},
		{"none decides", nil, true, def, false, 0},
		{"one grants", []answer{{def, nil}, {allowed, nil}}, false, allowed, false, 2},
		{"both grant", []answer{{allowed, nil}, {allowed, nil}}, true, allowed, false, 2},
		{"deny beats grant", []answer{{allowed, nil}, {denied, nil}}, false, denied, false, 2},
		{"deny first: the rest not asked", []answer{{denied, nil}, {allowed, nil}}, false, denied, false, 1},
		{"deny beats failure", []answer{{def, fail}, {denied, nil}}, false, denied, false, 2},
		{"failure beats grant", []answer{{allowed, nil}, {def, fail}}, false, denied, true, 2},
		{"failure beats default", []answer{{def, fail}, {def, nil}}, true, denied, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asked := 0
			var a allOf
			if tc.plain {
				a = append(a, auth.AllowAll{})
			}
			for _, r := range tc.answers {
				a = append(a, idAuthz{r.d, r.err, &asked})
			}
			got, err := a.AuthorizeClientID(context.Background(), &auth.Client{ClientID: "c"})
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("AuthorizeClientID = %v, %v, want %v (error: %v)", got, err, tc.want, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, fail) {
				t.Fatalf("error %v, want the authorizer's", err)
			}
			if asked != tc.wantAsked {
				t.Fatalf("%d authorizers asked, want %d", asked, tc.wantAsked)
			}
		})
	}
}

// buildAuth hands the broker an authorizer whose client id decisions it
// can find by a type assertion: a single one as it is, two through allOf.
func TestBuildAuthClientID(t *testing.T) {
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"result":"allow"}`) // every id granted
	}))
	t.Cleanup(service.Close)
	_, aclPath := authFiles(t, t.TempDir(), nil, "user carol\nclientid carol-*\ntopic read c/#\n")
	carol := func(id string) *auth.Client {
		return &auth.Client{ClientID: id, Username: "carol", UsernameFlag: true}
	}
	cases := []struct {
		name       string
		cfg        Config
		wantType   string
		carol1     auth.ClientIDDecision // carol uses carol-1
		other      auth.ClientIDDecision // carol uses x
		carolReads bool                  // may carol read z?
	}{
		{"acl file alone", Config{ACLFile: aclPath}, "*file.ACL", auth.ClientIDAllowed, auth.ClientIDDenied, false},
		{"clientid_url alone", Config{HTTPAuth: &HTTPAuth{ClientIDURL: service.URL}}, "*httpauth.Backend",
			auth.ClientIDAllowed, auth.ClientIDAllowed, true},
		{"both", Config{ACLFile: aclPath, HTTPAuth: &HTTPAuth{ClientIDURL: service.URL}}, "main.allOf",
			auth.ClientIDAllowed, auth.ClientIDDenied, false},
		{"url and acl_url only: ids not asked", Config{HTTPAuth: &HTTPAuth{URL: service.URL, ACLURL: service.URL}}, "*httpauth.Backend",
			auth.ClientIDDefault, auth.ClientIDDefault, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, authz, _, err := buildAuth(tc.cfg, discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", authz); got != tc.wantType {
				t.Fatalf("authorizer %s, want %s", got, tc.wantType)
			}
			ca, ok := authz.(auth.ConnectAuthorizer)
			if !ok {
				t.Fatal("not an auth.ConnectAuthorizer")
			}
			for _, c := range []struct {
				id   string
				want auth.ClientIDDecision
			}{{"carol-1", tc.carol1}, {"x", tc.other}} {
				if got, err := ca.AuthorizeClientID(context.Background(), carol(c.id)); got != c.want || err != nil {
					t.Errorf("carol uses %s: %v, %v, want %v", c.id, got, err, c.want)
				}
			}
			if got := authz.Authorize(carol("x"), auth.Read, "z"); got != tc.carolReads {
				t.Errorf("carol reads z: %v, want %v", got, tc.carolReads)
			}
		})
	}
	// Neither: everything allowed, and no opinion on ids.
	_, authz, _, err := buildAuth(Config{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := authz.(auth.ConnectAuthorizer); ok {
		t.Fatalf("%T decides client ids with nothing configured", authz)
	}
}

// clientid_url is read from the configuration file.
func TestConfigClientIDURL(t *testing.T) {
	cfg := defaultConfig()
	text := "http_auth:\n  clientid_url: http://127.0.0.1:1/clientid\n"
	if err := loadConfig(writeConfig(t, text), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAuth == nil || cfg.HTTPAuth.ClientIDURL != "http://127.0.0.1:1/clientid" {
		t.Fatalf("http_auth %+v", cfg.HTTPAuth)
	}
	if _, _, _, err := buildAuth(cfg, discard); err != nil {
		t.Fatal(err)
	}
	cfg.HTTPAuth.ClientIDURL = "127.0.0.1/clientid"
	if _, _, _, err := buildAuth(cfg, discard); err == nil || !strings.Contains(err.Error(), "client id URL") {
		t.Fatalf("bad clientid_url: %v", err)
	}
}

// examples/acl keeps each user to ids of their own.
func TestExampleACLClientIDs(t *testing.T) {
	acl, err := authfile.LoadACL(filepath.Join("..", "..", "examples", "acl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, id string
		want     auth.ClientIDDecision
	}{
		{"alice", "alice-1", auth.ClientIDAllowed}, // as TestSecureExample connects
		{"alice", "bob-1", auth.ClientIDDenied},
		{"alice", "alice", auth.ClientIDDenied},
		{"monitor", "monitor-1", auth.ClientIDAllowed},
		{"", "anything", auth.ClientIDDenied}, // an empty username widens nothing
	} {
		c := &auth.Client{ClientID: tc.id, Username: tc.user, UsernameFlag: true}
		if got, err := acl.AuthorizeClientID(context.Background(), c); got != tc.want || err != nil {
			t.Errorf("%s uses %s: %v, %v, want %v", tc.user, tc.id, got, err, tc.want)
		}
	}
}
