package broker_test

import (
	"errors"
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
