package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/webhook"
)

// receiver is a webhook receiver on an httptest server. It answers the
// statuses in script in turn, then 200; while hang is open, requests
// wait.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	events  []map[string]any
	posts   int
	headers []http.Header
	script  []int
	hang    chan struct{}
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	hang := r.hang
	r.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-req.Context().Done():
			return
		}
	}
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	r.headers = append(r.headers, req.Header.Clone())
	if len(r.script) > 0 {
		code := r.script[0]
		r.script = r.script[1:]
		if code != http.StatusOK {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(code)
			return
		}
	}
	var batch []map[string]any
	if err := json.Unmarshal(body, &batch); err != nil {
		panic(fmt.Sprintf("body is not a JSON array: %v: %s", err, body))
	}
	r.events = append(r.events, batch...)
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...)
}

func (r *receiver) postCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts
}

func fast(o webhook.Options) webhook.Options {
	o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func newHook(t *testing.T, cfg webhook.Config, o webhook.Options) *webhook.Webhook {
	t.Helper()
	w, err := webhook.New(cfg, fast(o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

// denySecret lets no one read "sensors/secret".
type denySecret struct{}

func (denySecret) Authorize(c *auth.Client, a auth.Action, t string) bool {
	return a != auth.Read || t != "sensors/secret"
}

// TestEvents checks the JSON of every event kind, field by field.
func TestEvents(t *testing.T) {
	rcv := newReceiver(t)
	hook := newHook(t, webhook.Config{URL: rcv.URL + "/mqtt", Topics: []string{"sensors/#"},
		Headers: map[string]string{"Authorization": "Bearer s3cret"}}, webhook.Options{Node: "node-1"})
	b := mt.StartBroker(t, broker.Options{Hooks: []any{hook}, Authorizer: denySecret{},
		Authenticator: auth.NewStatic(true, map[string]string{"alice": "pw"})})

	c := mt.Dial(t, b.Addr, packet.V5)
	if a := c.ConnectWith(&packet.Connect{ClientID: "dev-1", CleanStart: true, UsernameFlag: true, Username: "alice",
		PasswordFlag: true, Password: []byte("pw")}); a.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %+v", a)
	}
	c.Subscribe(1, 1, "sensors/#")
	c.Send(&packet.Publish{Topic: "sensors/t", QoS: 1, PacketID: 2, Payload: []byte("21.5"),
		Properties: packet.Properties{User: []packet.UserProperty{{Key: "unit", Value: "C"}, {Key: "unit", Value: "K"}}}})
	c.Read() // PUBACK and the message, in either order
	c.Read()
	c.Send(&packet.Publish{Topic: "other/t", Payload: []byte("not for the webhook")})
	c.Send(&packet.Publish{Topic: "sensors/secret", Retain: true, Payload: []byte{0xff, 0x00, 0x01}})
	c.Send(&packet.Unsubscribe{PacketID: 3, Filters: []string{"sensors/#"}})
	mt.Expect[*packet.Unsuback](c)
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(mt.Timeout)
	// The broker ends dev-1's connection after the client sees it closed:
	// its last event first, so the order below holds.
	mt.Eventually(t, "dev-1's 7 events", func() bool { return len(rcv.got()) == 7 })

	c2 := mt.Dial(t, b.Addr, packet.V311)
	c2.Connect("dev-2", true)
	c2.Conn.Close()

	mt.Eventually(t, "9 events", func() bool { return len(rcv.got()) == 9 })
	got := rcv.got()
	addr1, addr2 := c.Conn.LocalAddr().String(), c2.Conn.LocalAddr().String()
	for i, e := range got {
		ts, ok := e["timestamp"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); !ok || err != nil || !strings.HasSuffix(ts, "Z") {
			t.Errorf("event %d: timestamp %v: want RFC 3339 in UTC", i, e["timestamp"])
		}
		delete(e, "timestamp")
	}
	client := func(id, user, addr string, kv ...any) map[string]any {
		m := map[string]any{"node": "node-1", "client_id": id, "address": addr}
		if user != "" {
			m["username"] = user
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	want := []map[string]any{
		client("dev-1", "alice", addr1, "event", "client.connected", "protocol_version", 5.0),
		client("dev-1", "alice", addr1, "event", "client.subscribed", "filter", "sensors/#", "qos", 1.0),
		client("dev-1", "alice", addr1, "event", "message.published", "topic", "sensors/t", "qos", 1.0,
			"retain", false, "payload", "21.5", "user_properties",
			[]any{map[string]any{"key": "unit", "value": "C"}, map[string]any{"key": "unit", "value": "K"}}),
		// other/t is not under sensors/#: neither published nor dropped.
		client("dev-1", "alice", addr1, "event", "message.published", "topic", "sensors/secret", "qos", 0.0,
			"retain", true, "payload_base64", "/wAB"),
		client("dev-1", "alice", addr1, "event", "message.dropped", "topic", "sensors/secret", "qos", 0.0,
			"retain", true, "payload_base64", "/wAB", "reason", "not_authorized"),
		client("dev-1", "alice", addr1, "event", "client.unsubscribed", "filter", "sensors/#"),
		client("dev-1", "alice", addr1, "event", "client.disconnected"),
		client("dev-2", "", addr2, "event", "client.connected", "protocol_version", 4.0),
		client("dev-2", "", addr2, "event", "client.disconnected", "reason", "EOF"),
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
	rcv.mu.Lock()
	h := rcv.headers[0]
	rcv.mu.Unlock()
	if h.Get("Authorization") != "Bearer s3cret" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	if s := hook.Stats(); s.Sent != 9 || s.Failed != 0 || s.Dropped != 0 || s.Retried != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestEventSelection: only the events and topics configured are sent.
func TestEventSelection(t *testing.T) {
	rcv := newReceiver(t)
	hook := newHook(t, webhook.Config{URL: rcv.URL, Events: []string{webhook.MessagePublished},
		Topics: []string{"a/+", "b"}}, webhook.Options{})
	b := mt.StartBroker(t, broker.Options{Hooks: []any{hook}})
	c := mt.Dial(t, b.Addr, packet.V311)
	c.Connect("x", true)
	c.Subscribe(1, 0, "#")
	for _, tp := range []string{"a/1", "a/1/2", "b", "c", "$SYS/x"} {
		c.Send(&packet.Publish{Topic: tp, Payload: []byte(tp)})
	}
	c.Conn.Close()
	mt.Eventually(t, "2 events", func() bool { return len(rcv.got()) == 2 })
	time.Sleep(50 * time.Millisecond)
	if got := rcv.got(); len(got) != 2 || got[0]["topic"] != "a/1" || got[1]["topic"] != "b" {
		t.Fatalf("events %v", got)
	}
}

// TestRetries: network errors, 5xx and 429 are retried with backoff;
// other 4xx are not.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		script                []int
		maxRetries            int
		sent, failed, retried int64
	}{
		{"500 twice then success", []int{500, 500}, 0, 1, 0, 2},
		{"503 and 429 then success", []int{503, 429}, 0, 1, 0, 2},
		{"400 is not retried", []int{400}, 0, 0, 1, 0},
		{"404 is not retried", []int{404}, 0, 0, 1, 0},
		{"retries exhausted", []int{500, 500, 500}, 2, 0, 1, 2},
		{"no retries", []int{502}, -1, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, tc.script...)
			hook := newHook(t, webhook.Config{URL: rcv.URL, MaxRetries: tc.maxRetries}, webhook.Options{})
			hook.OnConnect(&auth.Client{ClientID: "c"})
			mt.Eventually(t, "done", func() bool { s := hook.Stats(); return s.Sent+s.Failed == 1 })
			s := hook.Stats()
			if s.Sent != tc.sent || s.Failed != tc.failed || s.Retried != tc.retried {
				t.Fatalf("stats %+v, want sent %d failed %d retried %d", s, tc.sent, tc.failed, tc.retried)
			}
			if n := rcv.postCount(); n != int(tc.retried)+1 {
				t.Fatalf("%d POSTs, want %d", n, tc.retried+1)
			}
			if got := len(rcv.got()); got != int(tc.sent) {
				t.Fatalf("%d events received, want %d", got, tc.sent)
			}
		})
	}
}

// TestRetryNetworkError: a receiver that is not there yet is retried
// until it is.
func TestRetryNetworkError(t *testing.T) {
	rcv := newReceiver(t)
	url := rcv.URL
	rcv.Close() // the port is free now: connections are refused
	hook := newHook(t, webhook.Config{URL: url, MaxRetries: 3}, webhook.Options{})
	hook.OnConnect(&auth.Client{ClientID: "c"})
	mt.Eventually(t, "failed", func() bool { return hook.Stats().Failed == 1 })
	if s := hook.Stats(); s.Retried != 3 || s.Sent != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestBatching: events waiting while a POST is out go together, as one
// JSON array, in order.
func TestBatching(t *testing.T) {
	rcv := newReceiver(t)
	rcv.hang = make(chan struct{})
	hook := newHook(t, webhook.Config{URL: rcv.URL, BatchSize: 50}, webhook.Options{})
	for i := range 101 {
		hook.OnConnect(&auth.Client{ClientID: fmt.Sprint(i)})
	}
	time.Sleep(50 * time.Millisecond) // the first POST is out, with event 0
	rcv.mu.Lock()
	close(rcv.hang)
	rcv.hang = nil
	rcv.mu.Unlock()
	mt.Eventually(t, "101 events", func() bool { return len(rcv.got()) == 101 })
	if n := rcv.postCount(); n != 3 {
		t.Errorf("%d POSTs, want 3 (1 + 50 + 50)", n)
	}
	for i, e := range rcv.got() {
		if e["client_id"] != fmt.Sprint(i) {
			t.Fatalf("event %d is client %v: out of order", i, e["client_id"])
		}
	}
}

// TestReceiverHangs: a receiver that does not answer costs message
// delivery nothing. The queue stays bounded and what does not fit is
// counted as dropped.
func TestReceiverHangs(t *testing.T) {
	rcv := newReceiver(t)
	rcv.hang = make(chan struct{})
	var logs mt.SyncBuffer
	hook := newHook(t, webhook.Config{URL: rcv.URL, QueueSize: 100, Timeout: 10 * time.Second},
		webhook.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const n = 2000
	// The same exchange on a broker without webhooks, for comparison.
	base, baseSlowest := pingPong(t, mt.StartBroker(t, broker.Options{}).Addr, n)
	took, slowest := pingPong(t, mt.StartBroker(t, broker.Options{Hooks: []any{hook}}).Addr, n)
	t.Logf("%d QoS 1 messages publisher -> broker -> subscriber: %v (%.0f/s, slowest %v) with the webhook receiver hanging; %v (%.0f/s, slowest %v) without webhooks",
		n, took, n/took.Seconds(), slowest, base, n/base.Seconds(), baseSlowest)
	if slowest > time.Second {
		t.Errorf("a round trip took %v: the webhook held up delivery", slowest)
	}
	s := hook.Stats()
	if s.Queued > 100 || s.Dropped < n-100-webhook.DefaultBatchSize || s.Sent != 0 {
		t.Fatalf("stats %+v: want at most 100 queued, the rest of %d events dropped", s, n+4)
	}
	if !strings.Contains(logs.String(), "webhook queue full: events dropped") || strings.Count(logs.String(), "queue full") != 1 {
		t.Errorf("want one log line for the drops (at most one a minute), got:\n%s", logs.String())
	}
	// The receiver answers again: what was queued arrives, and every
	// event is accounted for.
	rcv.mu.Lock()
	close(rcv.hang)
	rcv.hang = nil
	rcv.mu.Unlock()
	total := int64(2 + n + 1) // connected x2, published x n, subscribed
	mt.Eventually(t, "queue drained", func() bool { s := hook.Stats(); return s.Queued == 0 && s.Sent+s.Dropped == total })
	if s := hook.Stats(); s.Sent == 0 || int64(len(rcv.got())) != s.Sent {
		t.Fatalf("stats %+v, %d received", s, len(rcv.got()))
	}
}

// TestTLSFailure: a receiver whose certificate is not trusted fails at
// once (no retries), counted and logged saying so.
func TestTLSFailure(t *testing.T) {
	var called atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) }))
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the handshake errors are expected
	srv.StartTLS()
	defer srv.Close()
	var logs mt.SyncBuffer
	w, err := webhook.New(webhook.Config{URL: srv.URL + "/hook"},
		webhook.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	w.OnConnect(&auth.Client{ClientID: "c"})
	mt.Eventually(t, "failed", func() bool { return w.Stats().Failed == 1 })
	if s := w.Stats(); s.Retried != 0 || s.Sent != 0 {
		t.Errorf("stats %+v: want no retries", s)
	}
	// Counted, then logged: the line may come a moment after.
	mt.Eventually(t, "logged", func() bool { return strings.Contains(logs.String(), "level=ERROR") })
	log := logs.String()
	for _, want := range []string{"level=ERROR", "TLS failure", "certificate", srv.URL + "/hook"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if called.Load() {
		t.Error("the handler was called")
	}

	// Trusted, it works.
	w2 := newHook(t, webhook.Config{URL: srv.URL}, webhook.Options{Client: srv.Client()})
	w2.OnConnect(&auth.Client{ClientID: "c"})
	mt.Eventually(t, "sent", func() bool { return w2.Stats().Sent == 1 })
}

// TestBadConfig: bad URLs and settings are refused when the
// configuration is loaded.
func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  webhook.Config
		want string
	}{
		{webhook.Config{}, "url is missing"},
		{webhook.Config{URL: "hooks.example/mqtt"}, "scheme must be http or https"},
		{webhook.Config{URL: "ftp://hooks.example/mqtt"}, "scheme must be http or https"},
		{webhook.Config{URL: "https://"}, "no host"},
		{webhook.Config{URL: "https://:443/x"}, "no host"},
		{webhook.Config{URL: "http://a b/"}, "invalid character"},
		{webhook.Config{URL: "http://%zz/"}, "invalid URL escape"},
		{webhook.Config{URL: "https://user:pw@h/", Events: []string{"client.connect"}}, `unknown event "client.connect"`},
		{webhook.Config{URL: "https://h/", Topics: []string{"a/#/b"}}, `topic filter "a/#/b"`},
		{webhook.Config{URL: "https://h/", Topics: []string{"$share/g/a"}}, "shared"},
		{webhook.Config{URL: "https://h/", Headers: map[string]string{"X-A": "b\r\nX-Evil: 1"}}, "header"},
		{webhook.Config{URL: "https://h/", Timeout: -time.Second}, "negative"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.cfg, err, tc.want)
		}
		if strings.Contains(fmt.Sprint(err), ":pw@") {
			t.Errorf("error shows the password: %v", err)
		}
		if _, err := webhook.New(tc.cfg, webhook.Options{}); err == nil {
			t.Errorf("New(%+v) succeeded", tc.cfg)
		}
	}
	if err := (webhook.Config{URL: "https://hooks.example/mqtt", Events: []string{webhook.ClientConnected}}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestClose sends what is queued before it returns, and counts events
// after it as dropped.
func TestClose(t *testing.T) {
	rcv := newReceiver(t)
	w, err := webhook.New(webhook.Config{URL: rcv.URL}, fast(webhook.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		w.OnConnect(&auth.Client{ClientID: fmt.Sprint(i)})
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Sent != 500 || len(rcv.got()) != 500 {
		t.Fatalf("stats %+v, %d received", s, len(rcv.got()))
	}
	w.OnConnect(&auth.Client{ClientID: "late"})
	if s := w.Stats(); s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}

	// A receiver that hangs: Close gives up at its deadline.
	rcv.mu.Lock()
	rcv.hang = make(chan struct{})
	rcv.mu.Unlock()
	defer close(rcv.hang)
	w, _ = webhook.New(webhook.Config{URL: rcv.URL}, fast(webhook.Options{}))
	w.OnConnect(&auth.Client{ClientID: "x"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil {
		t.Fatal("Close returned nil with an event unsent")
	}
	if s := w.Stats(); s.Failed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// pingPong sends n QoS 1 messages from a publisher to a subscriber
// through the broker at addr, one at a time, checking each, and returns
// the time it took and the slowest round trip.
func pingPong(t *testing.T, addr string, n int) (took, slowest time.Duration) {
	sub := mt.Dial(t, addr, packet.V5)
	sub.Connect("sub", true)
	sub.Subscribe(1, 1, "sensors/#")
	pub := mt.Dial(t, addr, packet.V311)
	pub.Connect("pub", true)
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		payload := []byte(fmt.Sprint(i))
		pub.Send(&packet.Publish{Topic: "sensors/t", QoS: 1, PacketID: uint16(i%60000 + 1), Payload: payload})
		if a := mt.Expect[*packet.Puback](pub); a.ReasonCode.IsFailure() {
			t.Fatalf("PUBACK %+v", a)
		}
		p := mt.Expect[*packet.Publish](sub)
		if !bytes.Equal(p.Payload, payload) {
			t.Fatalf("message %d: got %q", i, p.Payload)
		}
		sub.Send(&packet.Puback{PacketID: p.PacketID})
		slowest = max(slowest, time.Since(t0))
	}
	return time.Since(start), slowest
}
