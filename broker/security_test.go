package broker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	authfile "github.com/ternmq/tern/auth/file"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// Regression tests for the security review: sessions never cross
// identities, every delivery is authorized for its receiver, and what any
// client may make the broker hold is bounded by default.

func loadACL(t *testing.T, text string) *authfile.ACL {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := authfile.LoadACL(path)
	if err != nil {
		t.Fatal(err)
	}
	return acl
}

// dialAs connects as user (anonymous when user is "") with a persistent
// session and returns the CONNACK without checking it.
func dialAs(t *testing.T, b *mt.Broker, v byte, id, user string, clean bool) (*mt.Raw, *packet.Connack) {
	t.Helper()
	c := mt.Dial(t, b.Addr, v)
	p := &packet.Connect{ClientID: id, CleanStart: clean, UsernameFlag: user != "", Username: user, KeepAlive: 30}
	if v == packet.V5 {
		p.Properties.SessionExpiry = u32(3600)
	}
	return c, c.ConnectWith(p)
}

func wantRefusedID(t *testing.T, v byte, ack *packet.Connack) {
	t.Helper()
	want := packet.RefusedIdentifierRejected
	if v == packet.V5 {
		want = packet.ClientIDNotValid
	}
	if ack.ReasonCode != want || ack.SessionPresent {
		t.Fatalf("CONNACK %#x (session present %v), want %#x", byte(ack.ReasonCode), ack.SessionPresent, byte(want))
	}
}

const aliceMallory = `
user alice
topic readwrite a/#
user mallory
topic readwrite m/#
`

// TestSessionHijackRefused: mallory cannot resume, discard or take over
// alice's session by using her client id; alice's queued message stays
// hers and her live connection is not kicked.
func TestSessionHijackRefused(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{Authenticator: anyone{}, Authorizer: loadACL(t, aliceMallory)})
		alice, ack := dialAs(t, b, v, "alice-1", "alice", false)
		if ack.ReasonCode != 0 {
			t.Fatalf("alice: CONNACK %#x", byte(ack.ReasonCode))
		}
		alice.Subscribe(1, 1, "a/#")
		alice.Conn.Close()
		mt.Eventually(t, "alice offline", func() bool { return b.Stats().Connections == 0 })
		pub, _ := dialAs(t, b, v, "pub", "alice", true)
		pub.Send(&packet.Publish{Topic: "a/secret", QoS: 1, PacketID: 1, Payload: []byte("s")})
		mt.Expect[*packet.Puback](pub)

		for _, clean := range []bool{false, true} {
			m, ack := dialAs(t, b, v, "alice-1", "mallory", clean)
			wantRefusedID(t, v, ack)
			m.ExpectClosed(mt.Timeout)
		}
		alice, ack = dialAs(t, b, v, "alice-1", "alice", false)
		if !ack.SessionPresent {
			t.Fatal("alice lost her session")
		}
		if p := mt.Expect[*packet.Publish](alice); p.Topic != "a/secret" {
			t.Fatalf("alice got %q", p.Topic)
		}
		// Live: mallory does not kick alice.
		m, ack := dialAs(t, b, v, "alice-1", "mallory", false)
		wantRefusedID(t, v, ack)
		m.ExpectClosed(mt.Timeout)
		alice.Send(&packet.Pingreq{})
		for {
			if _, ok := alice.Read().(*packet.Pingresp); ok {
				break
			}
		}
		// An anonymous client is an identity of its own too.
		anon, ack := dialAs(t, b, v, "alice-1", "", false)
		wantRefusedID(t, v, ack)
		anon.ExpectClosed(mt.Timeout)
	}, packet.V311, packet.V5)
}

// TestClientIDGrantRechecksMessages: an identity granted another's client
// id explicitly takes the session over, and gets of what it held only what
// it may read itself.
func TestClientIDGrantRechecksMessages(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		acl := loadACL(t, aliceMallory+"\nuser ops\nclientid dev-*\ntopic read a/public\n")
		b := mt.StartBroker(t, broker.Options{Authenticator: anyone{}, Authorizer: acl, MaxInflight: 1})
		alice, _ := dialAs(t, b, v, "dev-1", "alice", false)
		alice.Subscribe(1, 1, "a/#")
		pub, _ := dialAs(t, b, v, "pub", "alice", true)
		for i, topic := range []string{"a/secret", "a/public", "a/secret2", "a/public"} {
			pub.Send(&packet.Publish{Topic: topic, QoS: 1, PacketID: uint16(i + 1), Payload: []byte(topic)})
			mt.Expect[*packet.Puback](pub)
		}
		// alice holds a/secret in flight (unacknowledged) and the rest queued.
		if p := mt.Expect[*packet.Publish](alice); p.Topic != "a/secret" {
			t.Fatalf("alice got %q", p.Topic)
		}
		ops, ack := dialAs(t, b, v, "dev-1", "ops", false)
		if ack.ReasonCode != 0 || !ack.SessionPresent {
			t.Fatalf("ops: CONNACK %#x present %v", byte(ack.ReasonCode), ack.SessionPresent)
		}
		alice.ExpectClosed(mt.Timeout) // taken over
		for range 2 {
			p := mt.Expect[*packet.Publish](ops)
			if p.Topic != "a/public" {
				t.Fatalf("ops got %q", p.Topic)
			}
			ops.Send(&packet.Puback{PacketID: p.PacketID})
		}
		ops.ExpectNothing(100 * time.Millisecond)
		if n := b.Stats().Dropped.NotAuthorized; n < 2 {
			t.Fatalf("NotAuthorized = %d, want the 2 withheld", n)
		}
		// The session is ops's now: alice may not take it back.
		_, ack = dialAs(t, b, v, "dev-1", "alice", false)
		wantRefusedID(t, v, ack)
	}, packet.V311, packet.V5)
}

// TestClientIDRuleDenies: an ACL clientid rule refuses ids outside it.
func TestClientIDRuleDenies(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{Authenticator: anyone{}, Authorizer: loadACL(t, "pattern clientid %u-*\n"+aliceMallory)})
		_, ack := dialAs(t, b, v, "alice-2", "mallory", true)
		wantRefusedID(t, v, ack)
		if _, ack = dialAs(t, b, v, "alice-2", "alice", true); ack.ReasonCode != 0 {
			t.Fatalf("alice: CONNACK %#x", byte(ack.ReasonCode))
		}
		// An id the server assigns is not subject to the rules.
		if v == packet.V5 {
			if _, ack = dialAs(t, b, v, "", "mallory", true); ack.ReasonCode != 0 {
				t.Fatalf("assigned id: CONNACK %#x", byte(ack.ReasonCode))
			}
		}
	}, packet.V311, packet.V5)
}

// TestIdentityAfterRestart: a session restored from the store belongs to
// the same identity as before, down to a username that is present but
// empty, so the same owner resumes it and the same rules apply.
func TestIdentityAfterRestart(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		dir := t.TempDir()
		// Read needs a username; an empty one counts.
		opts := broker.Options{Authenticator: anyone{}, Authorizer: flagOnly{}}
		b := pebbleBrokerWith(t, dir, opts)
		c := mt.Dial(t, b.Addr, v)
		p := &packet.Connect{ClientID: "e", UsernameFlag: true, KeepAlive: 30}
		if v == packet.V5 {
			p.Properties.SessionExpiry = u32(3600)
		}
		c.ConnectWith(p)
		c.Subscribe(1, 1, "t")
		c.Conn.Close()
		mt.Eventually(t, "offline", func() bool { return b.Stats().Connections == 0 })
		b.Close()

		b = pebbleBrokerWith(t, dir, opts)
		pub, _ := dialAs(t, b, v, "pub", "p", true)
		pub.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("x")})
		mt.Expect[*packet.Puback](pub)
		c = mt.Dial(t, b.Addr, v)
		if ack := c.ConnectWith(p); ack.ReasonCode != 0 || !ack.SessionPresent {
			t.Fatalf("CONNACK %#x present %v", byte(ack.ReasonCode), ack.SessionPresent)
		}
		if got := mt.Expect[*packet.Publish](c); got.Topic != "t" {
			t.Fatalf("got %q", got.Topic)
		}
	}, packet.V311, packet.V5)
}

// flagOnly allows everything to clients that sent a username, even empty.
type flagOnly struct{}

func (flagOnly) Authorize(c *auth.Client, _ auth.Action, _ string) bool { return c.UsernameFlag }

// oneAuth is an enhanced authenticator that accepts, in one step, the
// username its data names.
type oneAuth struct{}

func (oneAuth) Method() string { return "ONE" }
func (oneAuth) Start(context.Context, *auth.Client) (auth.Exchange, error) {
	return &oneExchange{}, nil
}

type oneExchange struct{ name string }

func (e *oneExchange) Step(_ context.Context, in []byte) ([]byte, bool, error) {
	e.name = string(in)
	return nil, true, nil
}
func (e *oneExchange) Username() string { return e.name }

// TestReauthenticationKeepsIdentity: re-authenticating while messages are
// routed to the connection does not race with the routing (run with
// -race), and re-authenticating as someone else ends the connection
// (0x87) rather than moving the session to another identity.
func TestReauthenticationKeepsIdentity(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authenticator: anyone{}, Authorizer: readDeny{}, EnhancedAuth: []auth.EnhancedAuthenticator{oneAuth{}}})
	c := mt.Dial(t, b.Addr, packet.V5)
	ack := c.ConnectWith(&packet.Connect{ClientID: "r", CleanStart: true, KeepAlive: 30,
		Properties: packet.Properties{AuthMethod: "ONE", AuthData: []byte("alice")}})
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", byte(ack.ReasonCode))
	}
	c.Subscribe(1, 0, "news")
	pub, _ := dialAs(t, b, packet.V5, "pub", "p", true)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				pub.Send(&packet.Publish{Topic: "news", Payload: []byte("n")})
				time.Sleep(time.Millisecond)
			}
		}
	})
	for range 20 {
		c.Send(&packet.Auth{ReasonCode: packet.ReAuthenticate, Properties: packet.Properties{AuthMethod: "ONE", AuthData: []byte("alice")}})
		for {
			if a, ok := c.Read().(*packet.Auth); ok {
				if a.ReasonCode != packet.Success {
					t.Fatalf("AUTH %#x", byte(a.ReasonCode))
				}
				break
			}
		}
	}
	close(stop)
	wg.Wait()
	c.Send(&packet.Auth{ReasonCode: packet.ReAuthenticate, Properties: packet.Properties{AuthMethod: "ONE", AuthData: []byte("bob")}})
	for _, p := range c.ExpectClosed(mt.Timeout) {
		if d, ok := p.(*packet.Disconnect); ok {
			if d.ReasonCode != packet.NotAuthorized {
				t.Fatalf("DISCONNECT %#x, want 0x87", byte(d.ReasonCode))
			}
			return
		}
	}
	t.Fatal("no DISCONNECT after re-authenticating as another user")
}

// sharedACL lets everyone read and write everything, but user denied
// may not read s/secret (and so may subscribe to s/#).
const sharedACL = `
pattern readwrite #
user denied
topic deny s/secret
`

// TestSharedSkipsMembersThatMayNotRead: a member that may not read a
// topic is never picked for it, and the group loses nothing for it.
func TestSharedSkipsMembersThatMayNotRead(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{Authenticator: anyone{}, Authorizer: loadACL(t, sharedACL)})
		denied, _ := dialAs(t, b, v, "m-denied", "denied", true)
		if ack := denied.Subscribe(1, 1, "$share/g/s/#"); ack.ReasonCodes[0] != 1 {
			t.Fatalf("SUBACK %#x", byte(ack.ReasonCodes[0]))
		}
		reader, _ := dialAs(t, b, v, "m-reader", "reader", true)
		reader.Subscribe(1, 1, "$share/g/s/#")
		pub, _ := dialAs(t, b, v, "pub", "p", true)
		const n = 10
		for i := range n {
			pub.Send(&packet.Publish{Topic: "s/secret", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
			mt.Expect[*packet.Puback](pub)
		}
		for range n {
			p := mt.Expect[*packet.Publish](reader)
			reader.Send(&packet.Puback{PacketID: p.PacketID})
		}
		denied.ExpectNothing(100 * time.Millisecond)
		if d := b.Stats().Dropped.NoSharedMember; d != 0 {
			t.Fatalf("DroppedNoMember = %d", d)
		}
	}, packet.V311, packet.V5)
}

// TestSharedHandOverChecksRead: when a member leaves, its unacknowledged
// messages move only to a member that may read them; with none, they are
// counted, not handed to one that may not.
func TestSharedHandOverChecksRead(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{Authenticator: anyone{}, Authorizer: loadACL(t, sharedACL)})
		reader, _ := dialAs(t, b, v, "m-reader", "reader", true)
		reader.Subscribe(1, 1, "$share/g/s/#")
		pub, _ := dialAs(t, b, v, "pub", "p", true)
		pub.Send(&packet.Publish{Topic: "s/secret", QoS: 1, PacketID: 1, Payload: []byte("x")})
		mt.Expect[*packet.Puback](pub)
		mt.Expect[*packet.Publish](reader) // not acknowledged
		denied, _ := dialAs(t, b, v, "m-denied", "denied", true)
		if ack := denied.Subscribe(1, 1, "$share/g/s/#"); ack.ReasonCodes[0] != 1 {
			t.Fatalf("SUBACK %#x", byte(ack.ReasonCodes[0]))
		}
		reader.Conn.Close() // leaves with the message in flight
		denied.ExpectNothing(200 * time.Millisecond)
	}, packet.V311, packet.V5)
}

// hookDeny rejects every publish to topics under "no/".
type hookDeny struct{}

var errHook = errors.New("rejected by hook")

func (hookDeny) OnPublish(_ *auth.Client, m *broker.Message) error {
	if strings.HasPrefix(m.Topic, "no/") {
		return errHook
	}
	return nil
}

// TestWillPassesPublishChecks: a will is refused at CONNECT when its topic
// is beyond the limits or not authorized, and the publish hooks see it
// when it goes out.
func TestWillPassesPublishChecks(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{Authenticator: anyone{}, Authorizer: loadACL(t, aliceMallory),
			Hooks: []any{hookDeny{}}, MaxTopicLevels: 4})
		connect := func(id, user, topic string) (*mt.Raw, *packet.Connack) {
			c := mt.Dial(t, b.Addr, v)
			return c, c.ConnectWith(&packet.Connect{ClientID: id, CleanStart: true, UsernameFlag: true, Username: user,
				KeepAlive: 30, Will: &packet.Will{Topic: topic, Payload: []byte("bye")}})
		}
		_, ack := connect("w1", "alice", "a/1/2/3/4")
		if ack.ReasonCode == 0 {
			t.Fatal("will topic beyond max_topic_levels accepted")
		}
		_, ack = connect("w2", "alice", "m/x")
		if ack.ReasonCode != packet.RefusedNotAuthorized && ack.ReasonCode != packet.NotAuthorized {
			t.Fatalf("unauthorized will topic: CONNACK %#x", byte(ack.ReasonCode))
		}
		// A will the hook rejects is not published.
		b.Reload(broker.Options{Authenticator: anyone{}, Authorizer: auth.AllowAll{}, MaxTopicLevels: 4})
		watch, _ := dialAs(t, b, v, "watch", "mallory", true)
		watch.Subscribe(1, 0, "#")
		c, ack := connect("w3", "alice", "no/x")
		if ack.ReasonCode != 0 {
			t.Fatalf("CONNACK %#x", byte(ack.ReasonCode))
		}
		c.Conn.Close()
		c, _ = connect("w4", "alice", "yes/x")
		c.Conn.Close()
		if p := mt.Expect[*packet.Publish](watch); p.Topic != "yes/x" {
			t.Fatalf("got will on %q", p.Topic)
		}
	}, packet.V311, packet.V5)
}
