package broker_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// readDeny lets everyone do everything except user "bob" reading secret/.
type readDeny struct{}

func (readDeny) Authorize(c *auth.Client, a auth.Action, topic string) bool {
	return !(a == auth.Read && c.Username == "bob" && strings.HasPrefix(topic, "secret/"))
}

// anyone accepts every client, with or without a username.
type anyone struct{}

func (anyone) Authenticate(context.Context, *auth.Client) error { return nil }

func connectAs(t *testing.T, b *mt.Broker, v byte, id, user string) *mt.Raw {
	t.Helper()
	c := mt.Dial(t, b.Addr, v)
	ack := c.ConnectWith(&packet.Connect{ClientID: id, UsernameFlag: true, Username: user, KeepAlive: 30,
		Properties: packet.Properties{SessionExpiry: u32(0xFFFFFFFF)}})
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	return c
}

// TestReadDeniedOnDelivery: a subscription does not carry messages its
// subscriber may not read, forwarded or queued, also after a restart
// (the session keeps the identity it is authorized for).
func TestReadDeniedOnDelivery(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		dir := t.TempDir()
		b := pebbleBrokerWith(t, dir, broker.Options{Authenticator: anyone{}, Authorizer: readDeny{}})
		bob := connectAs(t, b, v, "bob-1", "bob")
		bob.Subscribe(1, 1, "#")
		pub := connectAs(t, b, v, "p", "alice")
		send := func(pub *mt.Raw, topic string, id uint16) {
			pub.Send(&packet.Publish{Topic: topic, QoS: 1, PacketID: id, Payload: []byte(topic)})
			mt.Expect[*packet.Puback](pub)
		}
		send(pub, "secret/plans", 1)
		send(pub, "public/news", 2)
		if p := mt.Expect[*packet.Publish](bob); p.Topic != "public/news" {
			t.Fatalf("bob got %q", p.Topic)
		}
		bob.Conn.Close()
		mt.Eventually(t, "bob offline", func() bool { return b.Stats().Connections == 1 })
		b.Close()

		b = pebbleBrokerWith(t, dir, broker.Options{Authenticator: anyone{}, Authorizer: readDeny{}})
		pub = connectAs(t, b, v, "p", "alice")
		send(pub, "secret/more", 3)
		send(pub, "public/more", 4)
		bob = connectAs(t, b, v, "bob-1", "bob")
		for {
			p := mt.Expect[*packet.Publish](bob)
			if strings.HasPrefix(p.Topic, "secret/") {
				t.Fatalf("bob got %q after restart", p.Topic)
			}
			bob.Send(&packet.Puback{PacketID: p.PacketID})
			if p.Topic == "public/more" {
				break
			}
		}
		bob.ExpectNothing(100 * time.Millisecond)
	}, packet.V311, packet.V5)
}

// certConn is a connection from a listener that maps client certificates
// to users.
type certConn struct {
	net.Conn
	name string
}

func (c certConn) CertUsername() (string, bool) { return c.name, c.name != "" }

// TestCertUsername: the user named by a verified client certificate is
// the client's username, without a password, and ACLs see it.
func TestCertUsername(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, nil), Authorizer: readDeny{}})
	server, client := net.Pipe()
	go b.ServeConn(certConn{server, "bob"})
	r := mt.Wrap(t, client, packet.V311)
	if ack := r.Connect("cert-client", true); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	r.Subscribe(1, 0, "#")
	b.Publish(&broker.Message{Topic: "secret/x", Payload: []byte("no")})
	b.Publish(&broker.Message{Topic: "public/x", Payload: []byte("yes")})
	if p := mt.Expect[*packet.Publish](r); p.Topic != "public/x" {
		t.Fatalf("got %q: the ACL did not see user bob", p.Topic)
	}
	// Without a certificate name the authenticator decides (and refuses).
	server2, client2 := net.Pipe()
	go b.ServeConn(certConn{server2, ""})
	if ack := mt.Wrap(t, client2, packet.V311).Connect("anon", true); ack.ReasonCode == 0 {
		t.Fatal("accepted without certificate or credentials")
	}
}
