package client

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// A refusal that retrying cannot fix ends the Session, and OnConnectError
// hears of it first.
func TestSessionPermanentRefusalCallsOnConnectError(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"alice": "secret"})})
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			heard := make(chan error, 10)
			s, err := NewSession(SessionOptions{
				Options: Options{Address: b.Addr, Version: tv.v, ClientID: "refused",
					Username: "alice", UsernameSet: true, Password: []byte("wrong"), PasswordSet: true},
				Backoff:        fastBackoff(),
				OnConnectError: func(err error) { heard <- err },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			select {
			case <-s.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the Session did not end")
			}
			if !errors.Is(s.Err(), packet.BadUsernameOrPassword) {
				t.Fatalf("Err: %v, want bad user name or password", s.Err())
			}
			select {
			case err := <-heard:
				if !errors.Is(err, packet.BadUsernameOrPassword) {
					t.Fatalf("OnConnectError(%v), want bad user name or password", err)
				}
			default:
				t.Fatal("OnConnectError not called for the refusal that ended the Session")
			}
		})
	}
}

// Options.Logger hears of the Session's connections, failed attempts and
// losses.
func TestSessionLogger(t *testing.T) {
	r := startRestartBroker(t)
	var buf mt.SyncBuffer
	s := newTestSession(t, SessionOptions{Options: Options{Address: r.addr, ClientID: "log",
		Logger: slog.New(slog.NewTextHandler(&buf, nil))}})
	_ = s
	r.stop()
	mt.Eventually(t, "the loss and a failed attempt logged", func() bool {
		out := buf.String()
		return strings.Contains(out, "mqtt connection lost") && strings.Contains(out, "mqtt connection attempt failed")
	})
	if out := buf.String(); !strings.Contains(out, `msg="mqtt connected" server=`+r.addr) {
		t.Fatalf("log without the connection: %s", out)
	}
}
