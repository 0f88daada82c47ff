package broker_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/pebble"
)

// Tests of the administrative view: Stats, the client, subscription and
// retained listings, Disconnect and DeleteSession, and the observation
// hooks.

// teeConn adds the bytes a test client reads and writes (the bytes the
// broker writes and reads) to counters.
type teeConn struct {
	net.Conn
	in, out []*atomic.Int64
}

func (c teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for _, k := range c.in {
		k.Add(int64(n))
	}
	return n, err
}

func (c teeConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	for _, k := range c.out {
		k.Add(int64(n))
	}
	return n, err
}

// counted is a raw client whose bytes are counted, its own and, in the
// workload's totals.
type counted struct {
	*mt.Raw
	in, out atomic.Int64
}

type workload struct {
	t       *testing.T
	b       *mt.Broker
	in, out atomic.Int64 // all clients: bytes read, written
}

func (w *workload) dial(v byte) *counted {
	w.t.Helper()
	nc, err := net.DialTimeout("tcp", w.b.Addr, mt.Timeout)
	if err != nil {
		w.t.Fatal(err)
	}
	c := &counted{}
	c.Raw = mt.Wrap(w.t, teeConn{Conn: nc, in: []*atomic.Int64{&c.in, &w.in}, out: []*atomic.Int64{&c.out, &w.out}}, v)
	return c
}

func (w *workload) connect(v byte, p *packet.Connect) *counted {
	w.t.Helper()
	c := w.dial(v)
	if ack := c.ConnectWith(p); ack.ReasonCode != 0 {
		w.t.Fatalf("%s: CONNACK %#x", p.ClientID, byte(ack.ReasonCode))
	}
	return c
}

// denyID refuses the client id "denied" (auth.ConnectAuthorizer) and
// allows everything else.
type denyID struct{ auth.AllowAll }

func (denyID) AuthorizeClientID(_ context.Context, c *auth.Client) (auth.ClientIDDecision, error) {
	if c.ClientID == "denied" {
		return auth.ClientIDDenied, nil
	}
	return auth.ClientIDDefault, nil
}

func expectPublish(t *testing.T, c *mt.Raw, topic string, qos byte) *packet.Publish {
	t.Helper()
	p := mt.Expect[*packet.Publish](c)
	if p.Topic != topic || p.QoS != qos {
		t.Fatalf("PUBLISH %q QoS %d, want %q QoS %d", p.Topic, p.QoS, topic, qos)
	}
	return p
}

// retainedCost mirrors what the broker counts a retained message as.
func retainedCost(topic, payload string) int64 {
	return int64(len(topic)+len(payload)) + int64(strings.Count(topic, "/")+1)*256
}

// TestAdminWorkload runs a small workload with 3.1.1 and v5 clients and
// checks every count Stats gives, the listings with search and paging,
// Disconnect and DeleteSession, and their errors.
func TestAdminWorkload(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{
		Authenticator: auth.NewStatic(true, map[string]string{"alice": "secret"}),
		Authorizer:    denyID{},
	})
	w := &workload{t: t, b: b}

	// Subscribers: a v5 one with a persistent session and a delayed
	// will, a 3.1.1 one, a v5 one that takes only small packets.
	sub5 := w.connect(packet.V5, &packet.Connect{ClientID: "sub5", KeepAlive: 30,
		UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("secret"),
		Will:       &packet.Will{Topic: "wills/sub5", Payload: []byte("gone"), Properties: packet.Properties{WillDelay: u32(3600)}},
		Properties: packet.Properties{SessionExpiry: u32(3600)}})
	sub5.Subscribe(1, 2, "t/#", "x/+")
	sub3 := w.connect(packet.V311, &packet.Connect{ClientID: "sub3", CleanStart: true, KeepAlive: 20})
	sub3.Subscribe(1, 1, "t/#", "wills/#")
	small := w.connect(packet.V5, &packet.Connect{ClientID: "small", CleanStart: true, KeepAlive: 10,
		Properties: packet.Properties{MaximumPacketSize: u32(64)}})
	small.Subscribe(1, 0, "big/#")
	pub := w.connect(packet.V311, &packet.Connect{ClientID: "pub", CleanStart: true, KeepAlive: 30})

	// Refused: a bad password, a denied client id.
	bad := w.dial(packet.V5)
	if ack := bad.ConnectWith(&packet.Connect{ClientID: "x", UsernameFlag: true, Username: "alice",
		PasswordFlag: true, Password: []byte("wrong"), CleanStart: true}); ack.ReasonCode != packet.BadUsernameOrPassword {
		t.Fatalf("bad password: CONNACK %#x", byte(ack.ReasonCode))
	}
	bad.ExpectClosed(mt.Timeout)
	denied := w.dial(packet.V311)
	wantRefusedID(t, packet.V311, denied.ConnectWith(&packet.Connect{ClientID: "denied", CleanStart: true}))
	denied.ExpectClosed(mt.Timeout)

	// One message at each QoS to both subscribers.
	pub.Send(&packet.Publish{Topic: "t/a", Payload: []byte("zero")})
	pub.Send(&packet.Publish{Topic: "t/b", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("one")})
	mt.Expect[*packet.Puback](pub.Raw)
	pub.Send(&packet.Publish{Topic: "t/c", QoS: 2, PacketID: 2, Payload: []byte("two")})
	mt.Expect[*packet.Pubrec](pub.Raw)
	pub.Send(&packet.Pubrel{PacketID: 2})
	mt.Expect[*packet.Pubcomp](pub.Raw)

	expectPublish(t, sub5.Raw, "t/a", 0)
	p := expectPublish(t, sub5.Raw, "t/b", 1)
	sub5.Send(&packet.Puback{PacketID: p.PacketID})
	p = expectPublish(t, sub5.Raw, "t/c", 2)
	sub5.Send(&packet.Pubrec{PacketID: p.PacketID})
	mt.Expect[*packet.Pubrel](sub5.Raw)
	sub5.Send(&packet.Pubcomp{PacketID: p.PacketID})
	expectPublish(t, sub3.Raw, "t/a", 0)
	for _, topic := range []string{"t/b", "t/c"} {
		p := expectPublish(t, sub3.Raw, topic, 1)
		sub3.Send(&packet.Puback{PacketID: p.PacketID})
	}

	// Retained messages, and one too large for "small".
	for _, topic := range []string{"r/1", "r/2", "r/x/3"} {
		pub.Send(&packet.Publish{Topic: topic, Retain: true, Payload: []byte("v" + topic)})
	}
	pub.Send(&packet.Publish{Topic: "big/1", Payload: make([]byte, 100)})
	mt.Eventually(t, "the retained messages", func() bool { return b.Stats().Retained == 4 })
	mt.Eventually(t, "the drop", func() bool { return b.Stats().Dropped.TooLarge == 1 })

	// Retained listing.
	items, total, err := b.Retained("#", 0, 0)
	if err != nil || total != 4 || len(items) != 4 || items[0].Topic != "r/1" || items[3].Topic != "t/b" {
		t.Fatalf("Retained(#) = %v, %d, %v", topics(items), total, err)
	}
	if items, total, _ = b.Retained("#", 1, 2); total != 4 || len(items) != 2 || items[0].Topic != "r/2" || items[1].Topic != "r/x/3" {
		t.Fatalf("Retained(#, 1, 2) = %v, %d", topics(items), total)
	}
	if items, total, _ = b.Retained("r/+", 0, 0); total != 2 || topics(items) != "r/1 r/2" {
		t.Fatalf("Retained(r/+) = %v, %d", topics(items), total)
	}
	if items, total, _ = b.Retained("#", 10, 5); total != 4 || len(items) != 0 {
		t.Fatalf("Retained(#, 10, 5) = %v, %d", topics(items), total)
	}
	if _, _, err := b.Retained("a/#/b", 0, 0); err == nil {
		t.Fatal("Retained with a bad filter: no error")
	}
	if m, err := b.RetainedMessage("r/x/3"); err != nil || string(m.Payload) != "vr/x/3" {
		t.Fatalf("RetainedMessage(r/x/3) = %v, %v", m, err)
	}
	if err := b.DeleteRetained("r/2"); err != nil {
		t.Fatalf("DeleteRetained: %v", err)
	}
	if _, err := b.RetainedMessage("r/2"); !errors.Is(err, broker.ErrNoRetained) {
		t.Fatalf("RetainedMessage after delete: %v", err)
	}
	if err := b.DeleteRetained("r/2"); !errors.Is(err, broker.ErrNoRetained) {
		t.Fatalf("DeleteRetained again: %v", err)
	}
	if _, err := b.RetainedMessage("r"); !errors.Is(err, broker.ErrNoRetained) {
		t.Fatalf("RetainedMessage(r): %v", err)
	}

	// Clients.
	cs, total := b.Clients(broker.ClientQuery{})
	if total != 4 || clientIDs(cs) != "pub small sub3 sub5" {
		t.Fatalf("Clients = %s (%d)", clientIDs(cs), total)
	}
	if cs, total = b.Clients(broker.ClientQuery{Search: "sub", Offset: 1, Limit: 5}); total != 2 || clientIDs(cs) != "sub5" {
		t.Fatalf("Clients(sub, 1, 5) = %s (%d)", clientIDs(cs), total)
	}
	if cs, total = b.Clients(broker.ClientQuery{Search: "alic"}); total != 1 || clientIDs(cs) != "sub5" {
		t.Fatalf("Clients(alic) = %s (%d)", clientIDs(cs), total)
	}
	addr := sub3.Conn.LocalAddr().String()
	if cs, total = b.Clients(broker.ClientQuery{Search: addr}); total != 1 || clientIDs(cs) != "sub3" {
		t.Fatalf("Clients(%s) = %s (%d)", addr, clientIDs(cs), total)
	}
	if cs, total = b.Clients(broker.ClientQuery{Limit: 2}); total != 4 || clientIDs(cs) != "pub small" {
		t.Fatalf("Clients(limit 2) = %s (%d)", clientIDs(cs), total)
	}
	mt.Eventually(t, "sub3's byte counts", func() bool {
		ci, _, _ := b.Client("sub3")
		return ci.BytesReceived == sub3.out.Load() && ci.BytesSent == sub3.in.Load()
	})
	ci, subs, err := b.Client("sub3")
	if err != nil || !ci.Connected || ci.Address != addr || ci.ProtocolVersion != 4 || ci.KeepAlive != 20 ||
		ci.Persistent || ci.Anonymous != true || ci.Subscriptions != 2 || ci.Queued != 0 || ci.Inflight != 0 ||
		time.Since(ci.ConnectedSince) > time.Minute || ci.BytesReceived == 0 {
		t.Fatalf("Client(sub3) = %+v, %v", ci, err)
	}
	if len(subs) != 2 || subs[0].Filter != "t/#" || subs[0].QoS != 1 || subs[1].Filter != "wills/#" || subs[0].ClientID != "sub3" {
		t.Fatalf("Client(sub3) subscriptions = %+v", subs)
	}
	if ci, _, _ := b.Client("sub5"); ci.Username != "alice" || ci.Anonymous || !ci.Persistent || ci.ProtocolVersion != 5 {
		t.Fatalf("Client(sub5) = %+v", ci)
	}
	if _, _, err := b.Client("nobody"); !errors.Is(err, broker.ErrNoSession) {
		t.Fatalf("Client(nobody): %v", err)
	}

	// Subscriptions.
	ss, total := b.Subscriptions(broker.SubscriptionQuery{})
	if total != 5 || filters(ss) != "small:big/# sub3:t/# sub3:wills/# sub5:t/# sub5:x/+" {
		t.Fatalf("Subscriptions = %s (%d)", filters(ss), total)
	}
	if ss, total = b.Subscriptions(broker.SubscriptionQuery{Search: "t/", Offset: 1, Limit: 1}); total != 2 || filters(ss) != "sub5:t/#" {
		t.Fatalf("Subscriptions(t/, 1, 1) = %s (%d)", filters(ss), total)
	}
	if ss, total = b.Subscriptions(broker.SubscriptionQuery{ClientID: "sub5"}); total != 2 || filters(ss) != "sub5:t/# sub5:x/+" || ss[0].QoS != 2 {
		t.Fatalf("Subscriptions(sub5) = %s (%d)", filters(ss), total)
	}
	if _, total = b.Subscriptions(broker.SubscriptionQuery{ClientID: "nobody"}); total != 0 {
		t.Fatalf("Subscriptions(nobody) = %d", total)
	}

	// Disconnect: the v5 client is told why; its will is delayed and
	// stays pending with the session.
	if err := b.Disconnect("nobody"); !errors.Is(err, broker.ErrNoSession) {
		t.Fatalf("Disconnect(nobody): %v", err)
	}
	if err := b.DeleteSession("sub5"); !errors.Is(err, broker.ErrConnected) {
		t.Fatalf("DeleteSession(sub5) while connected: %v", err)
	}
	if err := b.Disconnect("sub5"); err != nil {
		t.Fatalf("Disconnect(sub5): %v", err)
	}
	got := sub5.ExpectClosed(mt.Timeout)
	if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.AdministrativeAction {
		t.Fatalf("sub5 got %v, want DISCONNECT 0x98", got)
	}
	// Disconnect returned once the connection was cleaned up.
	if n := b.Stats().Connections; n != 3 {
		t.Fatalf("%d connections right after Disconnect, want 3", n)
	}
	if err := b.Disconnect("sub5"); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Disconnect(sub5) again: %v", err)
	}
	if ci, _, _ := b.Client("sub5"); ci.Connected || ci.ExpiresAt.IsZero() || ci.Address != "" || ci.Subscriptions != 2 {
		t.Fatalf("Client(sub5) offline = %+v", ci)
	}
	sub3.ExpectNothing(100 * time.Millisecond) // the will waits for its delay

	// DeleteSession: the pending will goes out now.
	if err := b.DeleteSession("sub5"); err != nil {
		t.Fatalf("DeleteSession(sub5): %v", err)
	}
	expectPublish(t, sub3.Raw, "wills/sub5", 0)
	if err := b.DeleteSession("sub5"); !errors.Is(err, broker.ErrNoSession) {
		t.Fatalf("DeleteSession(sub5) again: %v", err)
	}
	if err := b.DeleteSession("sub3"); !errors.Is(err, broker.ErrConnected) {
		t.Fatalf("DeleteSession(sub3): %v", err)
	}

	want := broker.Stats{
		Connections: 3, ConnectionsTotal: 4, ConnectionsMax: 4,
		Sessions: 3, Subscriptions: 3,
		Retained:      3,
		RetainedBytes: retainedCost("t/b", "one") + retainedCost("r/1", "vr/1") + retainedCost("r/x/3", "vr/x/3"),
		MessagesIn:    7, MessagesReceivedQoS: [3]int64{5, 1, 1},
		// sub5: t/a, t/b, t/c at 0, 1, 2; sub3: t/a and the will at 0,
		// t/b and t/c at 1.
		MessagesOut: 7, MessagesSentQoS: [3]int64{3, 3, 1},
		Kicked:          1,
		AuthFailures:    1,
		RefusedConnects: broker.RefusedCounts{BadCredentials: 1, ClientIDRejected: 1},
		Dropped:         broker.DroppedCounts{TooLarge: 1},
	}
	mt.Eventually(t, "every byte counted", func() bool {
		st := b.Stats()
		return st.BytesReceived == w.out.Load() && st.BytesSent == w.in.Load()
	})
	st := b.Stats()
	want.BytesReceived, want.BytesSent = st.BytesReceived, st.BytesSent
	if st != want {
		t.Fatalf("Stats:\n got %+v\nwant %+v", st, want)
	}
}

func topics(ms []*broker.Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Topic)
	}
	return strings.Join(s, " ")
}

func clientIDs(cs []broker.ClientInfo) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.ClientID)
	}
	return strings.Join(s, " ")
}

func filters(ss []broker.SubscriptionInfo) string {
	var s []string
	for _, x := range ss {
		s = append(s, x.ClientID+":"+x.Filter)
	}
	return strings.Join(s, " ")
}

// TestAdminQueuedInflight: Stats counts messages queued for an offline
// session and in flight to a client that does not acknowledge them.
func TestAdminQueuedInflight(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxInflight: 2})
	sub := mt.Dial(t, b.Addr, packet.V311)
	sub.Connect("sub", false)
	sub.Subscribe(1, 1, "q")
	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("pub", true)
	for i := range 5 {
		pub.Send(&packet.Publish{Topic: "q", QoS: 1, PacketID: uint16(i + 1), Payload: []byte("m")})
		mt.Expect[*packet.Puback](pub)
	}
	mt.Eventually(t, "2 in flight, 3 queued", func() bool {
		st := b.Stats()
		return st.Inflight == 2 && st.Queued == 3 && st.QueuedBytes == 3*2
	})
	ci, _, _ := b.Client("sub")
	if ci.Inflight != 2 || ci.Queued != 3 {
		t.Fatalf("Client(sub) = %+v", ci)
	}
	sub.Conn.Close()
	mt.Eventually(t, "sub offline", func() bool { return b.Stats().Connections == 1 })
	if err := b.DeleteSession("sub"); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Inflight != 0 || st.Queued != 0 || st.QueuedBytes != 0 || st.Sessions != 1 {
		t.Fatalf("after DeleteSession: %+v", st)
	}
}

// TestAdminKickV311: a 3.1.1 client is closed without DISCONNECT, and
// its will goes out at once.
func TestAdminKickV311(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	watch := mt.Dial(t, b.Addr, packet.V311)
	watch.Connect("watch", true)
	watch.Subscribe(1, 0, "wills/#")
	c := mt.Dial(t, b.Addr, packet.V311)
	c.ConnectWith(&packet.Connect{ClientID: "kick", CleanStart: true, Will: &packet.Will{Topic: "wills/kick", Payload: []byte("x")}})
	if err := b.Disconnect("kick"); err != nil {
		t.Fatal(err)
	}
	if got := c.ExpectClosed(mt.Timeout); len(got) != 0 {
		t.Fatalf("3.1.1 client got %v", got)
	}
	expectPublish(t, watch, "wills/kick", 0)
	if st := b.Stats(); st.Kicked != 1 {
		t.Fatalf("Kicked = %d", st.Kicked)
	}
}

// TestRefusedByReason: each kind of CONNECT refusal counts under its
// reason.
func TestRefusedByReason(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{
		Authenticator:     auth.NewStatic(false, map[string]string{"alice": "secret"}),
		MaxKeepAlive:      time.Minute,
		MaxClientIDLength: 10,
	})
	try := func(v byte, p *packet.Connect) {
		t.Helper()
		c := mt.Dial(t, b.Addr, v)
		if p == nil {
			c.SendBytes([]byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 9, 2, 0, 30, 0, 0})
		} else {
			p.CleanStart = true
			if ack := c.ConnectWith(p); ack.ReasonCode == 0 {
				t.Fatalf("%+v accepted", p)
			}
		}
		c.ExpectClosed(mt.Timeout)
	}
	try(packet.V311, &packet.Connect{ClientID: "a", KeepAlive: 30})                                    // anonymous: not authorized
	try(packet.V5, &packet.Connect{ClientID: "a", KeepAlive: 30, UsernameFlag: true, Username: "bob"}) // bad credentials
	try(packet.V311, &packet.Connect{ClientID: "a", KeepAlive: 600, UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("secret")})
	try(packet.V311, &packet.Connect{ClientID: "a-very-long-id", KeepAlive: 30})                                     // client id
	try(packet.V5, &packet.Connect{ClientID: "a", KeepAlive: 30, Properties: packet.Properties{AuthMethod: "NOPE"}}) // other
	try(packet.V311, nil)                                                                                            // protocol level 9
	want := broker.RefusedCounts{NotAuthorized: 1, BadCredentials: 1, KeepAlive: 1, ClientIDRejected: 1, Other: 1, ProtocolVersion: 1}
	mt.Eventually(t, "the refusals counted", func() bool { return b.Stats().RefusedConnects == want })
	if st := b.Stats(); st.AuthFailures != 2 || st.ConnectionsTotal != 0 {
		t.Fatalf("AuthFailures %d, ConnectionsTotal %d", st.AuthFailures, st.ConnectionsTotal)
	}
}

// latencies records what an Observer is told.
type latencies struct {
	mu    sync.Mutex
	byQoS [3]int
}

func (l *latencies) DeliveryLatency(qos byte, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d < 0 || d > time.Minute {
		panic("implausible latency")
	}
	l.byQoS[qos]++
}

func (l *latencies) get() [3]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byQoS
}

// TestObserver: the Observer is told one latency per delivery, at the
// QoS delivered; the store's OnCommit hook is called for group commits.
func TestObserver(t *testing.T) {
	var commits, records atomic.Int64
	st, err := pebble.Open(t.TempDir(), pebble.Options{OnCommit: func(d time.Duration, n int) {
		if d <= 0 || n <= 0 {
			panic("implausible commit")
		}
		commits.Add(1)
		records.Add(int64(n))
	}})
	if err != nil {
		t.Fatal(err)
	}
	obs := &latencies{}
	b := mt.StartBroker(t, broker.Options{Store: st, Observer: obs})
	var subs []*mt.Raw
	for i, v := range []byte{packet.V311, packet.V5} {
		s := mt.Dial(t, b.Addr, v)
		s.Connect(string(rune('a'+i)), false) // persistent: QoS 1 and 2 are stored
		s.Subscribe(1, 2, "o/#")
		subs = append(subs, s)
	}
	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("pub", true)
	pub.Send(&packet.Publish{Topic: "o/0", Payload: []byte("x")})
	pub.Send(&packet.Publish{Topic: "o/1", QoS: 1, PacketID: 1, Payload: []byte("x")})
	mt.Expect[*packet.Puback](pub)
	pub.Send(&packet.Publish{Topic: "o/2", QoS: 2, PacketID: 2, Payload: []byte("x")})
	mt.Expect[*packet.Pubrec](pub)
	pub.Send(&packet.Pubrel{PacketID: 2})
	mt.Expect[*packet.Pubcomp](pub)
	for _, s := range subs {
		expectPublish(t, s, "o/0", 0)
		expectPublish(t, s, "o/1", 1)
		expectPublish(t, s, "o/2", 2)
	}
	// Observed just after the copy is queued, maybe after it is read.
	mt.Eventually(t, "2 latencies at each QoS", func() bool { return obs.get() == [3]int{2, 2, 2} })
	// Retained messages sent on SUBSCRIBE are not deliveries of a
	// message just read.
	pub.Send(&packet.Publish{Topic: "r", Retain: true, Payload: []byte("x")})
	mt.Eventually(t, "retained", func() bool { return b.Stats().Retained == 1 })
	subs[0].Subscribe(2, 0, "r")
	expectPublish(t, subs[0], "r", 0)
	if got := obs.get(); got != [3]int{2, 2, 2} {
		t.Fatalf("latencies by QoS = %v after a retained message", got)
	}
	if commits.Load() == 0 || records.Load() < commits.Load() {
		t.Fatalf("OnCommit: %d commits, %d records", commits.Load(), records.Load())
	}
}
