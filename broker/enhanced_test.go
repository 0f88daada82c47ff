package broker_test

import (
	"testing"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/auth/scram"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func scramBroker(t *testing.T) *mt.Broker {
	t.Helper()
	creds, err := scram.NewCredentials("pencil", 4096)
	if err != nil {
		t.Fatal(err)
	}
	srv := scram.NewServer(func(user string) (scram.Credentials, bool) { return creds, user == "user" })
	// Password clients are refused: enhanced authentication is the way in.
	return mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, nil), EnhancedAuth: []auth.EnhancedAuthenticator{srv}})
}

// scramConnect runs a SCRAM-SHA-256 CONNECT exchange and returns the
// CONNACK (and the client, for checking the server's signature).
func scramConnect(t *testing.T, c *mt.Raw, user, password string) (*packet.Connack, *scram.Client) {
	t.Helper()
	sc := scram.NewClient(user, password)
	c.Send(&packet.Connect{ProtocolLevel: packet.V5, ClientID: "sc", CleanStart: true,
		Properties: packet.Properties{AuthMethod: scram.Method, AuthData: sc.First()}})
	challenge := mt.Expect[*packet.Auth](c) // [MQTT-4.12.0-2]
	if challenge.ReasonCode != packet.ContinueAuthentication || challenge.Properties.AuthMethod != scram.Method {
		t.Fatalf("AUTH %+v, want 0x18 with the method", challenge)
	}
	final, err := sc.Final(challenge.Properties.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	c.Send(&packet.Auth{ReasonCode: packet.ContinueAuthentication, Properties: packet.Properties{AuthMethod: scram.Method, AuthData: final}})
	return mt.Expect[*packet.Connack](c), sc
}

// Checks [MQTT-3.2.0-1] [MQTT-4.12.0-2] [MQTT-4.12.0-5].
func TestEnhancedAuthConnect(t *testing.T) {
	b := scramBroker(t)
	c := mt.Dial(t, b.Addr, packet.V5)
	ack, sc := scramConnect(t, c, "user", "pencil")
	if ack.ReasonCode != packet.Success || ack.Properties.AuthMethod != scram.Method {
		t.Fatalf("CONNACK %+v", ack)
	}
	if err := sc.Verify(ack.Properties.AuthData); err != nil {
		t.Fatalf("server signature: %v", err)
	}
	c.Send(&packet.Pingreq{})
	mt.Expect[*packet.Pingresp](c)

	bad := mt.Dial(t, b.Addr, packet.V5)
	if ack, _ := scramConnect(t, bad, "user", "wrong"); ack.ReasonCode != packet.BadUsernameOrPassword {
		t.Fatalf("wrong password: CONNACK %#x, want 0x86", ack.ReasonCode)
	}
	bad.ExpectClosed(mt.Timeout)
}

// Checks [MQTT-4.12.0-4].
func TestEnhancedAuthUnknownMethod(t *testing.T) {
	b := scramBroker(t)
	c := mt.Dial(t, b.Addr, packet.V5)
	ack := c.ConnectWith(&packet.Connect{ClientID: "x", CleanStart: true, Properties: packet.Properties{AuthMethod: "KERBEROS"}})
	if ack.ReasonCode != packet.BadAuthenticationMethod { // [MQTT-4.12.0-1]
		t.Fatalf("CONNACK %#x, want 0x8C", ack.ReasonCode)
	}
}

// Checks [MQTT-4.12.1-1].
func TestEnhancedReauthentication(t *testing.T) {
	b := scramBroker(t)
	c := mt.Dial(t, b.Addr, packet.V5)
	if ack, _ := scramConnect(t, c, "user", "pencil"); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %+v", ack)
	}
	c.Subscribe(1, 0, "t")
	reauth := func(password string) packet.Packet {
		sc := scram.NewClient("user", password)
		c.Send(&packet.Auth{ReasonCode: packet.ReAuthenticate, Properties: packet.Properties{AuthMethod: scram.Method, AuthData: sc.First()}})
		ch := mt.Expect[*packet.Auth](c)
		final, err := sc.Final(ch.Properties.AuthData)
		if err != nil {
			t.Fatal(err)
		}
		c.Send(&packet.Auth{ReasonCode: packet.ContinueAuthentication, Properties: packet.Properties{AuthMethod: scram.Method, AuthData: final}})
		return c.Read()
	}
	if p, ok := reauth("pencil").(*packet.Auth); !ok || p.ReasonCode != packet.Success {
		t.Fatalf("re-authentication answered %+v, want AUTH 0x00", p)
	}
	// The connection carried on throughout.
	c.Send(&packet.Publish{Topic: "t", Payload: []byte("still here")})
	mt.Expect[*packet.Publish](c)
	if d, ok := reauth("wrong").(*packet.Disconnect); !ok || d.ReasonCode != packet.NotAuthorized { // [MQTT-4.12.1-2]
		t.Fatalf("failed re-authentication answered %+v, want DISCONNECT 0x87", d)
	}
	c.ExpectClosed(mt.Timeout)
}

// Checks [MQTT-4.12.0-7].
func TestAuthWithoutEnhancedAuthIsProtocolError(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("plain", true)
	c.Send(&packet.Auth{ReasonCode: packet.ReAuthenticate, Properties: packet.Properties{AuthMethod: "SCRAM-SHA-256"}})
	got := c.ExpectClosed(mt.Timeout)
	if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.ProtocolError { // [MQTT-4.12.1-1]
		t.Fatalf("got %+v, want DISCONNECT 0x82", got)
	}
}

// Reload replaces the enhanced authenticators: SCRAM users added or
// removed by a reload are in force at the next CONNECT.
func TestEnhancedAuthReload(t *testing.T) {
	b := scramBroker(t)
	creds, err := scram.NewCredentials("eraser", 4096)
	if err != nil {
		t.Fatal(err)
	}
	srv := scram.NewServer(func(user string) (scram.Credentials, bool) { return creds, user == "other" })
	b.Reload(broker.Options{Authenticator: auth.NewStatic(false, nil), EnhancedAuth: []auth.EnhancedAuthenticator{srv}})
	if ack, _ := scramConnect(t, mt.Dial(t, b.Addr, packet.V5), "other", "eraser"); ack.ReasonCode != packet.Success {
		t.Fatalf("user added by the reload: CONNACK %#x", ack.ReasonCode)
	}
	if ack, _ := scramConnect(t, mt.Dial(t, b.Addr, packet.V5), "user", "pencil"); ack.ReasonCode != packet.BadUsernameOrPassword {
		t.Fatalf("user removed by the reload: CONNACK %#x, want 0x86", ack.ReasonCode)
	}
}
