package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ternmq/tern/auth"
)

const testToken = "s3cret-token"

// testServer runs a Server for cfg on addr until the test ends.
type testServer struct {
	*Server
	url string
	f   *fakeBroker
}

func start(t *testing.T, addr string, cfg Config) *testServer {
	t.Helper()
	f, _ := cfg.Broker.(*fakeBroker)
	if cfg.Broker == nil {
		f = newFake()
		cfg.Broker = f
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())
	s.SetReady("")
	return &testServer{Server: s, url: "http://127.0.0.1:" + port, f: f}
}

// call makes one request; header values are "Name: value".
func (ts *testServer) call(t *testing.T, method, path, body string, headers ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(path, "/api/") {
		// Every error is JSON with an "error" string.
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d error body %q (%s), want JSON {\"error\": ...}", method, path, resp.StatusCode, b, resp.Header.Get("Content-Type"))
		}
	}
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

func TestHealthAndReady(t *testing.T) {
	ts := start(t, "127.0.0.1:0", Config{})
	if code, b := ts.call(t, "GET", "/healthz", ""); code != 200 || decode[map[string]string](t, b)["status"] != "ok" {
		t.Fatalf("healthz %d %s", code, b)
	}
	if code, b := ts.call(t, "GET", "/readyz", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, b)
	}
	ts.SetReady("shutting down")
	if code, b := ts.call(t, "GET", "/readyz", ""); code != 503 || decode[map[string]string](t, b)["reason"] != "shutting down" {
		t.Fatalf("readyz while shutting down: %d %s", code, b)
	}
	ts.SetReady("")
	ts.f.mu.Lock()
	ts.f.health = errors.New("store failed: disk full")
	ts.f.mu.Unlock()
	if code, b := ts.call(t, "GET", "/readyz", ""); code != 503 || !strings.Contains(string(b), "disk full") {
		t.Fatalf("readyz with a failed store: %d %s", code, b)
	}
}

func TestReadEndpoints(t *testing.T) {
	started := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ts := start(t, "127.0.0.1:0", Config{Version: "1.2.3", StartedAt: started,
		Listeners: []Listener{{Type: "tcp", Address: "127.0.0.1:1883"}}, Limits: map[string]any{"max_inflight": 10}})
	type obj = map[string]any
	tests := []struct {
		path string
		code int
		want func(t *testing.T, b []byte)
	}{
		{"/api/v1/info", 200, func(t *testing.T, b []byte) {
			v := decode[obj](t, b)
			if v["version"] != "1.2.3" || v["started_at"] != "2025-01-02T03:04:05Z" || v["uptime_seconds"].(float64) < 1 ||
				v["limits"].(obj)["max_inflight"] != 10.0 || v["listeners"].([]any)[0].(obj)["address"] != "127.0.0.1:1883" {
				t.Errorf("info %s", b)
			}
		}},
		{"/api/v1/stats", 200, func(t *testing.T, b []byte) {
			v := decode[obj](t, b)
			for _, k := range []string{"connections", "messages_received", "messages_sent", "bytes_received", "bytes_sent"} {
				if _, ok := v[k]; !ok {
					t.Errorf("stats without %s: %s", k, b)
				}
			}
			if v["messages_received"] != 7.0 || v["dropped"].(obj)["slow"] != 3.0 || v["refused_connects"].(obj)["bad_credentials"] != 2.0 {
				t.Errorf("stats %s", b)
			}
		}},
		{"/api/v1/clients", 200, func(t *testing.T, b []byte) {
			v := decode[obj](t, b)
			if v["total"] != 3.0 || v["limit"] != 50.0 || v["offset"] != 0.0 || len(v["items"].([]any)) != 3 {
				t.Errorf("clients %s", b)
			}
		}},
		{"/api/v1/clients?offset=1&limit=1", 200, func(t *testing.T, b []byte) {
			v := decode[obj](t, b)
			items := v["items"].([]any)
			if v["total"] != 3.0 || len(items) != 1 || items[0].(obj)["client_id"] != "alpha" {
				t.Errorf("clients page 2 %s", b)
			}
		}},
		{"/api/v1/clients?search=alic", 200, func(t *testing.T, b []byte) {
			if v := decode[obj](t, b); v["total"] != 1.0 {
				t.Errorf("clients search %s", b)
			}
		}},
		{"/api/v1/clients?offset=99", 200, func(t *testing.T, b []byte) {
			if v := decode[obj](t, b); v["total"] != 3.0 || len(v["items"].([]any)) != 0 {
				t.Errorf("clients past the end %s", b)
			}
		}},
		{"/api/v1/clients?limit=0", 400, nil},
		{"/api/v1/clients?limit=1001", 400, nil},
		{"/api/v1/clients?limit=ten", 400, nil},
		{"/api/v1/clients?offset=-1", 400, nil},
		{"/api/v1/clients/alpha", 200, func(t *testing.T, b []byte) {
			v := decode[obj](t, b)
			if v["client"].(obj)["username"] != "alice" || len(v["subscriptions"].([]any)) != 1 {
				t.Errorf("client %s", b)
			}
		}},
		{"/api/v1/clients/a%2Fb", 200, func(t *testing.T, b []byte) {
			if v := decode[obj](t, b); v["client"].(obj)["client_id"] != "a/b" || len(v["subscriptions"].([]any)) != 0 {
				t.Errorf("client with a slash %s", b)
			}
		}},
		{"/api/v1/clients/nobody", 404, nil},
		{"/api/v1/subscriptions", 200, func(t *testing.T, b []byte) {
			if v := decode[obj](t, b); v["total"] != 2.0 {
				t.Errorf("subscriptions %s", b)
			}
		}},
		{"/api/v1/subscriptions?client=beta&search=b", 200, func(t *testing.T, b []byte) {
			v := decode[obj](t, b)
			if items := v["items"].([]any); v["total"] != 1.0 || items[0].(obj)["filter"] != "b/+" || items[0].(obj)["qos"] != 2.0 {
				t.Errorf("subscriptions of beta %s", b)
			}
		}},
		{"/api/v1/subscriptions?limit=x", 400, nil},
		{"/api/v1/retained", 200, func(t *testing.T, b []byte) {
			v := decode[obj](t, b)
			items := v["items"].([]any)
			if v["total"] != 2.0 || len(items) != 2 {
				t.Fatalf("retained %s", b)
			}
			one, two := items[0].(obj), items[1].(obj)
			if one["topic"] != "t/1" || one["payload_text"] != "hello" || one["payload_base64"] != "aGVsbG8=" || one["size"] != 5.0 || one["qos"] != 1.0 {
				t.Errorf("retained t/1 %v", one)
			}
			if _, ok := two["payload_text"]; ok || two["payload_base64"] != "//4=" {
				t.Errorf("retained binary payload %v", two)
			}
		}},
		{"/api/v1/retained?filter=t%2F%2B&limit=1", 200, func(t *testing.T, b []byte) {
			if v := decode[obj](t, b); v["total"] != 2.0 || len(v["items"].([]any)) != 1 {
				t.Errorf("retained t/+ %s", b)
			}
		}},
		{"/api/v1/retained?filter=a%2F%23%2Fb", 400, nil},
		{"/api/v1/retained?limit=-5", 400, nil},
		{"/api/v1/retained/message?topic=t%2F1", 200, func(t *testing.T, b []byte) {
			if v := decode[obj](t, b); v["payload_text"] != "hello" {
				t.Errorf("retained message %s", b)
			}
		}},
		{"/api/v1/retained/message?topic=t%2F9", 404, nil},
		{"/api/v1/retained/message?topic=t%2F%23", 400, nil},
		{"/api/v1/retained/message", 400, nil},
		{"/api/v1/nothing", 404, nil},
		{"/api/v1/clients/a/b/c", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, b := ts.call(t, "GET", tt.path, "")
			if code != tt.code {
				t.Fatalf("%d %s, want %d", code, b, tt.code)
			}
			if tt.want != nil {
				tt.want(t, b)
			}
		})
	}
}

func TestChanges(t *testing.T) {
	reloads := 0
	var reloadErr error
	ts := start(t, "127.0.0.1:0", Config{Auth: Auth{Token: testToken}, Reload: func() error { reloads++; return reloadErr }})
	bearer := "Authorization: Bearer " + testToken
	tests := []struct {
		name, method, path, body string
		code                     int
	}{
		{"kick", "POST", "/api/v1/clients/alpha/disconnect", "", 204},
		{"kick again", "POST", "/api/v1/clients/alpha/disconnect", "", 409},
		{"kick unknown", "POST", "/api/v1/clients/nobody/disconnect", "", 404},
		{"delete connected", "DELETE", "/api/v1/sessions/a%2Fb", "", 409},
		{"delete offline", "DELETE", "/api/v1/sessions/beta", "", 204},
		{"delete gone", "DELETE", "/api/v1/sessions/beta", "", 404},
		{"delete retained", "DELETE", "/api/v1/retained/message?topic=t%2F1", "", 204},
		{"delete retained gone", "DELETE", "/api/v1/retained/message?topic=t%2F1", "", 404},
		{"delete retained bad", "DELETE", "/api/v1/retained/message?topic=", "", 400},
		{"publish text", "POST", "/api/v1/publish", `{"topic":"x/y","payload":"hi","qos":1,"retain":true,"content_type":"text/plain","user_properties":[{"key":"k","value":"v"}]}`, 204},
		{"publish base64", "POST", "/api/v1/publish", `{"topic":"x/z","payload_base64":"AAE="}`, 204},
		{"publish empty", "POST", "/api/v1/publish", `{"topic":"x/empty"}`, 204},
		{"publish wildcard", "POST", "/api/v1/publish", `{"topic":"x/#","payload":"hi"}`, 400},
		{"publish no topic", "POST", "/api/v1/publish", `{"payload":"hi"}`, 400},
		{"publish qos 3", "POST", "/api/v1/publish", `{"topic":"x","qos":3}`, 400},
		{"publish qos -1", "POST", "/api/v1/publish", `{"topic":"x","qos":-1}`, 400},
		{"publish both payloads", "POST", "/api/v1/publish", `{"topic":"x","payload":"a","payload_base64":"AA=="}`, 400},
		{"publish bad base64", "POST", "/api/v1/publish", `{"topic":"x","payload_base64":"!!"}`, 400},
		{"publish unknown field", "POST", "/api/v1/publish", `{"topic":"x","colour":"red"}`, 400},
		{"publish malformed", "POST", "/api/v1/publish", `{"topic":`, 400},
		{"publish not an object", "POST", "/api/v1/publish", `[1,2]`, 400},
		{"publish two objects", "POST", "/api/v1/publish", `{"topic":"x"}{"topic":"y"}`, 400},
		{"publish empty body", "POST", "/api/v1/publish", ``, 400},
		{"publish qos string", "POST", "/api/v1/publish", `{"topic":"x","qos":"1"}`, 400},
		{"publish broker fails", "POST", "/api/v1/publish", `{"topic":"fail"}`, 503},
		{"reload", "POST", "/api/v1/reload", "", 204},
		{"wrong method", "POST", "/api/v1/stats", "", 405},
		{"wrong method on id", "GET", "/api/v1/clients/alpha/disconnect", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, b := ts.call(t, tt.method, tt.path, tt.body, bearer); code != tt.code {
				t.Fatalf("%d %s, want %d", code, b, tt.code)
			}
		})
	}
	f := ts.f
	if !slices.Equal(f.kicked, []string{"alpha"}) {
		t.Errorf("kicked %v", f.kicked)
	}
	if len(f.published) != 3 {
		t.Fatalf("published %d messages, want 3", len(f.published))
	}
	m := f.published[0]
	if m.Topic != "x/y" || string(m.Payload) != "hi" || m.QoS != 1 || !m.Retain || m.Properties.ContentType != "text/plain" ||
		len(m.Properties.User) != 1 || m.Properties.User[0].Key != "k" || m.Properties.User[0].Value != "v" {
		t.Errorf("published %+v", m)
	}
	if m := f.published[1]; string(m.Payload) != "\x00\x01" || m.QoS != 0 || m.Retain {
		t.Errorf("published %+v", m)
	}
	if code, b := ts.call(t, "GET", "/api/v1/retained/message?topic=x%2Fy", ""); code != 200 ||
		!strings.Contains(string(b), `"user_properties":[{"key":"k","value":"v"}]`) || !strings.Contains(string(b), `"content_type":"text/plain"`) {
		t.Errorf("retained after publish: %d %s", code, b)
	}
	reloadErr = errors.New("limits.queue_full_policy \"x\": want drop-newest, drop-oldest or refuse")
	if code, b := ts.call(t, "POST", "/api/v1/reload", "", bearer); code != 400 || !strings.Contains(string(b), "queue_full_policy") {
		t.Errorf("refused reload: %d %s", code, b)
	}
	if reloads != 2 {
		t.Errorf("%d reloads, want 2", reloads)
	}
}

func TestReloadUnavailable(t *testing.T) {
	ts := start(t, "127.0.0.1:0", Config{Auth: Auth{Token: testToken}})
	if code, b := ts.call(t, "POST", "/api/v1/reload", "", "Authorization: Bearer "+testToken); code != 501 {
		t.Fatalf("%d %s", code, b)
	}
}

func TestPublishBodyTooLarge(t *testing.T) {
	ts := start(t, "127.0.0.1:0", Config{Auth: Auth{Token: testToken}})
	body := `{"topic":"x","payload":"` + strings.Repeat("a", maxPublishBody) + `"}`
	if code, b := ts.call(t, "POST", "/api/v1/publish", body, "Authorization: Bearer "+testToken); code != 413 {
		t.Fatalf("%d %s", code, b)
	}
}

// countingAuth is a password check that counts its calls.
type countingAuth struct {
	auth.Authenticator
	calls int
}

func (c *countingAuth) Authenticate(ctx context.Context, cl *auth.Client) error {
	c.calls++
	return c.Authenticator.Authenticate(ctx, cl)
}

func TestAuth(t *testing.T) {
	pw := &countingAuth{Authenticator: auth.NewStatic(false, map[string]string{"root": "rootpw", "bob": "bobpw"})}
	a := Auth{Token: testToken, Users: []string{"root"}, Passwords: pw}
	loop := start(t, "127.0.0.1:0", Config{Auth: a})
	basic := func(user, pass string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return "Authorization: " + r.Header.Get("Authorization")
	}
	tests := []struct {
		name, method, path, auth string
		code                     int
	}{
		{"anonymous read on loopback", "GET", "/api/v1/stats", "", 200},
		{"anonymous metrics on loopback", "GET", "/metrics", "", 200},
		{"anonymous change on loopback", "POST", "/api/v1/clients/alpha/disconnect", "", 401},
		{"anonymous reload", "POST", "/api/v1/reload", "", 401},
		{"bad token read", "GET", "/api/v1/stats", "Authorization: Bearer nope", 401},
		{"bad token change", "POST", "/api/v1/clients/alpha/disconnect", "Authorization: Bearer nope", 401},
		{"token prefix", "POST", "/api/v1/clients/alpha/disconnect", "Authorization: Bearer " + testToken[:4], 401},
		{"unknown scheme", "POST", "/api/v1/clients/alpha/disconnect", "Authorization: Digest x", 401},
		{"admin with wrong password", "POST", "/api/v1/clients/alpha/disconnect", basic("root", "nope"), 401},
		{"unknown user", "POST", "/api/v1/clients/alpha/disconnect", basic("eve", "evepw"), 401},
		{"non-admin user", "POST", "/api/v1/clients/alpha/disconnect", basic("bob", "bobpw"), 403},
		{"non-admin user reads", "GET", "/api/v1/stats", basic("bob", "bobpw"), 403},
		{"admin user", "POST", "/api/v1/clients/alpha/disconnect", basic("root", "rootpw"), 204},
		{"token", "DELETE", "/api/v1/sessions/alpha", "Authorization: bearer " + testToken, 204},
		{"health needs nothing", "GET", "/healthz", "Authorization: Bearer nope", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.auth != "" {
				h = append(h, tt.auth)
			}
			code, b := loop.call(t, tt.method, tt.path, "", h...)
			if code != tt.code {
				t.Fatalf("%d %s, want %d", code, b, tt.code)
			}
		})
	}
	// A right password is checked once, then remembered.
	before := pw.calls
	for range 3 {
		if code, _ := loop.call(t, "GET", "/api/v1/info", "", basic("root", "rootpw")); code != 200 {
			t.Fatal(code)
		}
	}
	if pw.calls != before {
		t.Errorf("%d password checks for a remembered password", pw.calls-before)
	}
	// New credentials replace the old ones and what was remembered.
	if err := loop.SetAuth(Auth{Token: "other"}); err != nil {
		t.Fatal(err)
	}
	if code, _ := loop.call(t, "POST", "/api/v1/reload", "", basic("root", "rootpw")); code != 401 {
		t.Errorf("old user after SetAuth: %d", code)
	}
	if code, _ := loop.call(t, "POST", "/api/v1/reload", "", "Authorization: Bearer "+testToken); code != 401 {
		t.Errorf("old token after SetAuth: %d", code)
	}

	// Bound to every interface: nothing without credentials.
	open := start(t, "0.0.0.0:0", Config{Auth: a})
	if code, _ := open.call(t, "GET", "/api/v1/stats", ""); code != 401 {
		t.Errorf("anonymous read on a non-loopback address: %d", code)
	}
	if code, _ := open.call(t, "GET", "/metrics", ""); code != 401 {
		t.Errorf("anonymous metrics on a non-loopback address: %d", code)
	}
	if code, b := open.call(t, "GET", "/api/v1/stats", "", "Authorization: Bearer "+testToken); code != 200 {
		t.Errorf("token on a non-loopback address: %d %s", code, b)
	}
	if code, _ := open.call(t, "GET", "/readyz", ""); code != 200 {
		t.Errorf("readyz on a non-loopback address: %d", code)
	}
	if err := open.SetAuth(Auth{}); err == nil {
		t.Error("SetAuth took away every credential of a non-loopback server")
	}
}

func TestNonLoopbackNeedsCredentials(t *testing.T) {
	s, err := New(Config{Broker: newFake(), Auth: Auth{Users: []string{"root"}}}) // users, but no password file
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.Serve(l); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("Serve on 0.0.0.0 without credentials: %v", err)
	}
}

func TestIsLoopbackAddress(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:18830": true, "[::1]:80": true, "localhost:1": true, "127.1.2.3:4": true,
		":18830": false, "0.0.0.0:1": false, "[::]:1": false, "192.168.1.2:1": false, "example.com:1": false, "nonsense": false,
	} {
		if got := IsLoopbackAddress(addr); got != want {
			t.Errorf("IsLoopbackAddress(%q) = %v", addr, got)
		}
	}
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	ts := start(t, "127.0.0.1:0", Config{Metrics: m})
	m.DeliveryLatency(1, 3*time.Millisecond)
	m.DeliveryLatency(7, time.Second) // no such QoS: ignored
	m.CommitLatency(2*time.Millisecond, 12)
	m.StoreBytes(func() uint64 { return 3456 })
	code, b := ts.call(t, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	out := string(b)
	for _, want := range []string{
		"tern_connections 1\n",
		"tern_messages_received_total{qos=\"0\"} 4\n",
		"tern_messages_received_total{qos=\"2\"} 1\n",
		"tern_messages_sent_total{qos=\"1\"} 0\n",
		"tern_bytes_sent_total 1234\n",
		"tern_bytes_received_total 0\n",
		"tern_dropped_messages_total{reason=\"slow\"} 3\n",
		"tern_dropped_messages_total{reason=\"queue_full\"} 0\n",
		"tern_refused_connections_total{reason=\"bad_credentials\"} 2\n",
		"tern_refused_connections_total{reason=\"connection_limit\"} 0\n",
		"tern_sessions ", "tern_subscriptions ", "tern_retained_messages ", "tern_retained_bytes ",
		"tern_queued_messages ", "tern_inflight_messages ", "tern_auth_failures_total ",
		"tern_delivery_latency_seconds_count{qos=\"1\"} 1\n",
		"tern_delivery_latency_seconds_bucket{qos=\"1\",le=\"0.005\"} 1\n",
		"tern_store_commit_seconds_count 1\n",
		"tern_store_committed_records_total 12\n",
		"tern_store_committed_bytes_total 3456\n",
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics without %q", want)
		}
	}
	// One Metrics serves one broker.
	if _, err := New(Config{Broker: newFake(), Metrics: m}); err == nil {
		t.Error("the same Metrics took a second broker")
	}
}

func TestDeliveryLatencyDoesNotAllocate(t *testing.T) {
	m := NewMetrics()
	if n := testing.AllocsPerRun(1000, func() { m.DeliveryLatency(1, time.Millisecond) }); n != 0 {
		t.Fatalf("%v allocations per observation", n)
	}
}

func TestDashboardFiles(t *testing.T) {
	ui := fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>Tern</title>")}, "app.js": {Data: []byte("1")}}
	ts := start(t, "127.0.0.1:0", Config{UI: ui, Auth: Auth{Token: testToken}})
	open := start(t, "0.0.0.0:0", Config{UI: ui, Auth: Auth{Token: testToken}})
	for _, s := range []*testServer{ts, open} {
		if code, b := s.call(t, "GET", "/", ""); code != 200 || !strings.Contains(string(b), "<title>Tern</title>") {
			t.Errorf("/: %d %s", code, b)
		}
		if code, b := s.call(t, "GET", "/app.js", ""); code != 200 || string(b) != "1" {
			t.Errorf("/app.js: %d %s", code, b)
		}
	}
	if code, _ := ts.call(t, "GET", "/nothing.css", ""); code != 404 {
		t.Errorf("/nothing.css: %d", code)
	}
	if code, _ := ts.call(t, "GET", "/api/v1/nothing", ""); code != 404 {
		t.Errorf("/api/v1/nothing with a dashboard: %d", code)
	}
}
