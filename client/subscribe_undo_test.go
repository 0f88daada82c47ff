package client

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/memory"
)

// switchDial dials addr while online is set: a network that comes and
// goes.
func switchDial(addr string, online *atomic.Bool) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		if !online.Load() {
			return nil, errors.New("offline")
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// A Session.SubscribeFunc that fails (here: its context ends while
// offline) must not take an earlier subscription to the same filter with
// it: when the server has lost the session, the earlier one is renewed
// and its handler still gets the messages.
func TestSessionFailedSubscribeKeepsEarlier(t *testing.T) {
	for _, server := range []string{"tern", "mosquitto"} {
		for _, tv := range versions {
			if tv.v == packet.V31 {
				// 3.1 has no Session Present: a Session cannot tell that
				// the server lost the session, and renews nothing.
				continue
			}
			t.Run(server+"/"+tv.name, func(t *testing.T) {
				var addr string
				var restart func() // the server loses every session
				if server == "tern" {
					r := startRestartBroker(t)
					addr = r.addr
					restart = func() { r.store = memory.New(); r.restart() }
				} else {
					m := mt.StartMosquitto(t, false)
					addr, restart = m.Addr, m.Restart
				}
				var online atomic.Bool
				online.Store(true)
				o := SessionOptions{Options: Options{Dial: switchDial(addr, &online), Version: tv.v, ClientID: "undo"}}
				if tv.v == packet.V5 {
					o.Properties.SessionExpiry = ptr[uint32](600)
				}
				s := newTestSession(t, o)
				got := make(chan string, 10)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := s.SubscribeFunc(ctx, func(p *packet.Publish) { got <- "first " + string(p.Payload) },
					packet.Subscription{Filter: "a", QoS: 1}); err != nil {
					t.Fatal(err)
				}

				online.Store(false)
				restart()
				mt.Eventually(t, "the Session notices the loss", func() bool { return s.Client() == nil })
				short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
				_, err := s.SubscribeFunc(short, func(p *packet.Publish) { got <- "second " + string(p.Payload) },
					packet.Subscription{Filter: "a", QoS: 1})
				cancelShort()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("offline SubscribeFunc: %v, want a deadline error", err)
				}
				online.Store(true)
				if err := s.AwaitConnection(ctx); err != nil {
					t.Fatal(err)
				}

				pub := connectTest(t, Options{Address: addr, Version: tv.v, ClientID: "pub", CleanStart: true})
				if err := pub.Publish(ctx, &packet.Publish{Topic: "a", QoS: 1, Payload: []byte("m")}); err != nil {
					t.Fatal(err)
				}
				select {
				case g := <-got:
					if g != "first m" {
						t.Fatalf("got %q, want the earlier handler's %q", g, "first m")
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the earlier subscription was not renewed: nothing received")
				}
			})
		}
	}
}

// Client.SubscribeFunc that fails, or is refused, puts back the handler
// it replaced.
func TestClientFailedSubscribeKeepsEarlierHandler(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(s *fakeServer, id uint16) // nil: no answer, the context ends
	}{
		{"context ends", nil},
		{"refused", func(s *fakeServer, id uint16) {
			s.send(&packet.Suback{PacketID: id, ReasonCodes: []packet.ReasonCode{packet.UnspecifiedError}})
		}},
	} {
		for _, tv := range versions {
			t.Run(tc.name+"/"+tv.name, func(t *testing.T) {
				s := newFakeServer(t, tv.v, nil)
				c := s.connect(Options{})
				got := make(chan string, 10)
				ctx := context.Background()
				errc := async(func() error {
					_, err := c.SubscribeFunc(ctx, func(p *packet.Publish) { got <- "first" }, packet.Subscription{Filter: "a", QoS: 1})
					return err
				})
				sub := expectType[*packet.Subscribe](t, s.expect())
				s.send(&packet.Suback{PacketID: sub.PacketID, ReasonCodes: []packet.ReasonCode{1}})
				if err := recvErr(t, errc); err != nil {
					t.Fatal(err)
				}

				sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				errc = async(func() error {
					_, err := c.SubscribeFunc(sctx, func(p *packet.Publish) { got <- "second" }, packet.Subscription{Filter: "a", QoS: 2})
					return err
				})
				sub = expectType[*packet.Subscribe](t, s.expect())
				if tc.answer != nil {
					tc.answer(s, sub.PacketID)
				}
				recvErr(t, errc)

				s.send(&packet.Publish{Topic: "a", Payload: []byte("m")})
				select {
				case g := <-got:
					if g != "first" {
						t.Fatalf("delivered to the %s handler, want the first", g)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("message not delivered to the earlier handler")
				}
			})
		}
	}
}
