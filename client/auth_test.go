package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/auth/scram"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// scramTernBroker admits SCRAM-SHA-256 clients only: user "user",
// password "pencil".
func scramTernBroker(t *testing.T) *mt.Broker {
	t.Helper()
	creds, err := scram.NewCredentials("pencil", 4096)
	if err != nil {
		t.Fatal(err)
	}
	srv := scram.NewServer(func(user string) (scram.Credentials, bool) { return creds, user == "user" })
	return mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, nil), EnhancedAuth: []auth.EnhancedAuthenticator{srv}})
}

// Enhanced authentication with SCRAM against Tern: the CONNECT exchange,
// a re-authentication on the open connection, a wrong password refused.
func TestSCRAMConnectAndReauthenticate(t *testing.T) {
	b := scramTernBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 1)
	c := connectTest(t, Options{Address: b.Addr, Version: packet.V5, ClientID: "scram", CleanStart: true,
		Auth: SCRAM("user", "pencil"), OnMessage: func(p *packet.Publish) { got <- string(p.Payload) }})
	if m := c.Connack().Properties.AuthMethod; m != scram.Method {
		t.Fatalf("CONNACK method %q", m)
	}
	if err := c.Reauthenticate(ctx); err != nil {
		t.Fatalf("Reauthenticate: %v", err)
	}
	if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "t", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, &packet.Publish{Topic: "t", QoS: 1, Payload: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		if g != "after" {
			t.Fatalf("got %q", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message after re-authentication")
	}

	_, err := Connect(ctx, Options{Address: b.Addr, Version: packet.V5, ClientID: "bad", CleanStart: true, Auth: SCRAM("user", "wrong")})
	if !errors.Is(err, packet.BadUsernameOrPassword) {
		t.Fatalf("wrong password: %v, want bad user name or password", err)
	}
	if _, err := Connect(ctx, Options{Address: b.Addr, Version: packet.V311, Auth: SCRAM("user", "pencil")}); err == nil {
		t.Fatal("enhanced authentication accepted before v5")
	}
}

// A server whose final message does not prove it knows the credentials
// is refused, even though it accepted the client.
func TestSCRAMImpostorRefused(t *testing.T) {
	ln := listen(t)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := mt.Wrap(t, c, packet.V5)
		cp := mt.Expect[*packet.Connect](r)
		first := string(cp.Properties.AuthData)
		nonce := first[len("n,,n=user,r="):]
		r.Send(&packet.Auth{ReasonCode: packet.ContinueAuthentication, Properties: packet.Properties{AuthMethod: scram.Method,
			AuthData: []byte("r=" + nonce + "xyz,s=c2FsdA==,i=4096")}})
		mt.Expect[*packet.Auth](r)
		r.Send(&packet.Connack{Properties: packet.Properties{AuthMethod: scram.Method, AuthData: []byte("v=bm90IGEgc2lnbmF0dXJl")}})
		r.ExpectClosed(5 * time.Second)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Connect(ctx, Options{Address: ln.Addr().String(), Version: packet.V5, ClientID: "i", CleanStart: true, Auth: SCRAM("user", "pencil")})
	if !errors.Is(err, scram.ErrServerSignature) {
		t.Fatalf("Connect to an impostor: %v, want ErrServerSignature", err)
	}
}
