package broker_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// recorder implements every hook and refuses publishes to "blocked".
type recorder struct {
	mu     sync.Mutex
	events []string
}

var (
	_ broker.OnConnect    = (*recorder)(nil)
	_ broker.OnDisconnect = (*recorder)(nil)
	_ broker.OnPublish    = (*recorder)(nil)
)

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) OnConnect(c *auth.Client) { r.add("connect " + c.ClientID) }
func (r *recorder) OnDisconnect(c *auth.Client, err error) {
	r.add("disconnect " + c.ClientID)
}
func (r *recorder) OnPublish(c *auth.Client, m *broker.Message) error {
	r.add("publish " + m.Topic)
	if m.Topic == "blocked" {
		return errors.New("blocked by hook")
	}
	return nil
}

func TestHooks(t *testing.T) {
	rec := &recorder{}
	b := mt.StartBroker(t, broker.Options{Hooks: []any{rec}})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("h", true)
	c.Subscribe(1, 1, "#")
	c.Send(&packet.Publish{Topic: "blocked", QoS: 1, PacketID: 1, Payload: []byte("x")})
	if a := mt.Expect[*packet.Puback](c); a.ReasonCode != packet.UnspecifiedError {
		t.Fatalf("PUBACK %+v, want a failure code for a refused publish", a)
	}
	c.Send(&packet.Publish{Topic: "open", Payload: []byte("y")})
	if p := mt.Expect[*packet.Publish](c); p.Topic != "open" {
		t.Fatalf("got %q", p.Topic)
	}
	c.ExpectNothing(100 * time.Millisecond) // the blocked one was not routed
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(mt.Timeout)
	mt.Eventually(t, "disconnect hook", func() bool { return len(rec.list()) == 4 })
	want := []string{"connect h", "publish blocked", "publish open", "disconnect h"}
	for i, e := range rec.list() {
		if e != want[i] {
			t.Fatalf("events %v, want %v", rec.list(), want)
		}
	}
}

// subRecorder records subscriptions and drops.
type subRecorder struct{ recorder }

var (
	_ broker.OnSubscribe   = (*subRecorder)(nil)
	_ broker.OnUnsubscribe = (*subRecorder)(nil)
	_ broker.OnDrop        = (*subRecorder)(nil)
)

func (r *subRecorder) OnSubscribe(c *auth.Client, s packet.Subscription) {
	r.add("subscribe " + c.ClientID + " " + s.Filter + " " + string('0'+s.QoS))
}
func (r *subRecorder) OnUnsubscribe(c *auth.Client, f string) {
	r.add("unsubscribe " + c.ClientID + " " + f)
}
func (r *subRecorder) OnDrop(to *auth.Client, m *broker.Message, why broker.DropReason) {
	r.add("drop " + to.ClientID + " " + m.Topic + " " + why.String())
}

// denyRead lets everyone publish and subscribe, but no one read "secret".
type denyRead struct{}

func (denyRead) Authorize(c *auth.Client, a auth.Action, t string) bool {
	return a != auth.Read || t != "secret"
}

func TestSubscribeAndDropHooks(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		rec := &subRecorder{}
		b := mt.StartBroker(t, broker.Options{Hooks: []any{rec}, Authorizer: denyRead{}})
		c := mt.Dial(t, b.Addr, v)
		c.Connect("s", true)
		c.Subscribe(1, 1, "#")
		c.Send(&packet.Publish{Topic: "secret", Payload: []byte("x")})
		c.Send(&packet.Unsubscribe{PacketID: 2, Filters: []string{"#", "none"}})
		mt.Expect[*packet.Unsuback](c)
		want := []string{"connect s", "subscribe s # 1", "publish secret", "drop s secret not_authorized", "unsubscribe s #"}
		if got := rec.list(); !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
	}, packet.V311, packet.V5)
}

func TestDropReasonString(t *testing.T) {
	for r, want := range map[broker.DropReason]string{broker.DropQueueFull: "queue_full", broker.DropSlow: "slow",
		broker.DropExpired: "expired", broker.DropNotAuthorized: "not_authorized", broker.DropNoSharedMember: "no_shared_member",
		broker.DropTooLarge: "too_large", broker.DropQueueRefused: "queue_refused", 0: "unknown", 99: "unknown"} {
		if r.String() != want {
			t.Errorf("%d: %q, want %q", r, r.String(), want)
		}
	}
}
