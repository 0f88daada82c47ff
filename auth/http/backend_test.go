package httpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
)

// service is a fake auth service: it records requests and answers with
// the status its decide function returns.
type service struct {
	*httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	last   map[string]any
	header http.Header
}

func newService(t *testing.T, decide func(body map[string]any) int) *service {
	return newReplyService(t, func(body map[string]any) (int, string) { return decide(body), "" })
}

// newReplyService is newService for a service that answers with a body
// too.
func newReplyService(t *testing.T, decide func(body map[string]any) (int, string)) *service {
	s := &service{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		var body map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.last, s.header = body, r.Header.Clone()
		s.mu.Unlock()
		code, reply := decide(body)
		w.WriteHeader(code)
		io.WriteString(w, reply)
	}))
	t.Cleanup(s.Close)
	return s
}

// byPassword accepts password "good", says 401 to "bad", 403 to "banned"
// and 500 to anything else.
func byPassword(body map[string]any) int {
	switch body["password"] {
	case "good":
		return http.StatusOK
	case "bad":
		return http.StatusUnauthorized
	case "banned":
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// byTopic allows topic "ok", denies the rest with 403, and answers 503 to
// topic "down".
func byTopic(body map[string]any) int {
	switch body["topic"] {
	case "ok":
		return http.StatusOK
	case "down":
		return http.StatusServiceUnavailable
	}
	return http.StatusForbidden
}

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func client(user, pw string) *auth.Client {
	return &auth.Client{ClientID: "c1", Username: user, UsernameFlag: true, Password: []byte(pw),
		RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}, Version: 5}
}

func TestAuthenticate(t *testing.T) {
	s := newService(t, byPassword)
	b, err := New(Config{AuthURL: s.URL, Headers: map[string]string{"Authorization": "Bearer t0ken"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		pw      string
		want    error
		wantErr bool // a failure, not a decision
	}{
		{"200 accepts", "good", nil, false},
		{"401 bad credentials", "bad", auth.ErrBadCredentials, false},
		{"403 not authorized", "banned", auth.ErrNotAuthorized, false},
		{"500 fails, never accepts", "other", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Authenticate(context.Background(), client("alice", tc.pw))
			switch {
			case tc.wantErr:
				if err == nil || errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, auth.ErrNotAuthorized) {
					t.Fatalf("Authenticate = %v, want a server failure", err)
				}
			case !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil):
				t.Fatalf("Authenticate = %v, want %v", err, tc.want)
			}
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]any{"clientid": "c1", "username": "alice", "password": "other",
		"remote_addr": "192.0.2.1:40000", "protocol_version": float64(5)}
	for k, v := range want {
		if s.last[k] != v {
			t.Errorf("request field %s = %v, want %v (body %v)", k, s.last[k], v, s.last)
		}
	}
	if got := s.header.Get("Authorization"); got != "Bearer t0ken" {
		t.Errorf("Authorization header %q", got)
	}
}

func TestAuthenticateFailures(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers in time: waits until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	cases := []struct {
		name string
		cfg  Config
	}{
		{"timeout", Config{AuthURL: slow.URL, Timeout: 20 * time.Millisecond}},
		{"connection refused", Config{AuthURL: gone.URL}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = b.Authenticate(context.Background(), client("alice", "good"))
			if err == nil || errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, auth.ErrNotAuthorized) {
				t.Fatalf("Authenticate = %v, want a server failure", err)
			}
			if b.authc.len() != 0 {
				t.Fatal("a failure was cached")
			}
		})
	}
	// The broker's own deadline counts too.
	b, _ := New(Config{AuthURL: slow.URL, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Authenticate(ctx, client("alice", "good")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate with a cancelled context = %v", err)
	}
}

func TestAuthenticateCache(t *testing.T) {
	s := newService(t, byPassword)
	clk := &clock{t: time.Unix(1e9, 0)}
	b, err := New(Config{AuthURL: s.URL, CacheTTL: 30 * time.Second, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		name      string
		c         *auth.Client
		advance   time.Duration
		want      error
		wantCalls int64
	}{
		{"first: asks", client("alice", "good"), 0, nil, 1},
		{"again: cached", client("alice", "good"), 0, nil, 1},
		{"other port, same host: cached", func() *auth.Client {
			c := client("alice", "good")
			c.RemoteAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40001}
			return c
		}(), 0, nil, 1},
		{"wrong password: not the cached yes", client("alice", "bad"), 0, auth.ErrBadCredentials, 2},
		{"wrong password again: cached no", client("alice", "bad"), 0, auth.ErrBadCredentials, 2},
		{"other user: asks", client("bob", "good"), 0, nil, 3},
		{"just before expiry: cached", client("alice", "good"), 30*time.Second - 1, nil, 3},
		{"expired: asks again", client("alice", "good"), 1, nil, 4},
		{"failure: not cached", client("alice", "other"), 0, nil, 5},
		{"failure again: asks again", client("alice", "other"), 0, nil, 6},
	}
	for _, st := range steps {
		clk.add(st.advance)
		err := b.Authenticate(ctx, st.c)
		if st.c.Password != nil && string(st.c.Password) == "other" {
			if err == nil {
				t.Fatalf("%s: accepted", st.name)
			}
		} else if !errors.Is(err, st.want) || (err == nil) != (st.want == nil) {
			t.Fatalf("%s: Authenticate = %v, want %v", st.name, err, st.want)
		}
		if got := s.calls.Load(); got != st.wantCalls {
			t.Fatalf("%s: %d service calls, want %d", st.name, got, st.wantCalls)
		}
	}
}

func TestAuthorize(t *testing.T) {
	s := newService(t, byTopic)
	b, err := New(Config{ACLURL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	c := client("alice", "")
	cases := []struct {
		name   string
		action auth.Action
		topic  string
		want   bool
	}{
		{"200 allows publish", auth.Publish, "ok", true},
		{"200 allows subscribe", auth.Subscribe, "ok", true},
		{"200 allows read", auth.Read, "ok", true},
		{"403 denies", auth.Publish, "no", false},
		{"5xx denies", auth.Read, "down", false},
		{"unknown action denies without asking", auth.Action(9), "ok", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.Authorize(c, tc.action, tc.topic); got != tc.want {
				t.Fatalf("Authorize = %v, want %v", got, tc.want)
			}
		})
	}
	s.mu.Lock()
	if s.last["action"] != "read" || s.last["topic"] != "down" || s.last["username"] != "alice" || s.last["clientid"] != "c1" {
		t.Errorf("last request %v", s.last)
	}
	if _, ok := s.last["password"]; ok {
		t.Error("ACL request carries a password")
	}
	s.mu.Unlock()
	if s.calls.Load() != 5 {
		t.Errorf("%d service calls, want 5", s.calls.Load())
	}
	// No ACL URL: everything is allowed, nothing is asked.
	open, _ := New(Config{AuthURL: s.URL})
	if !open.Authorize(c, auth.Publish, "anything") {
		t.Fatal("no ACL URL denied")
	}
}

func TestAuthorizeFailsClosed(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	b, err := New(Config{ACLURL: slow.URL, Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if b.Authorize(client("alice", ""), auth.Publish, "ok") {
		t.Fatal("a timed-out ACL request allowed")
	}
	if b.aclc.len() != 0 {
		t.Fatal("a failure was cached")
	}
}

func TestAuthorizeCache(t *testing.T) {
	s := newService(t, byTopic)
	clk := &clock{t: time.Unix(1e9, 0)}
	b, err := New(Config{ACLURL: s.URL, CacheTTL: time.Minute, CacheSize: 3, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := client("alice", ""), client("bob", "")
	steps := []struct {
		name      string
		c         *auth.Client
		action    auth.Action
		topic     string
		advance   time.Duration
		want      bool
		wantCalls int64
	}{
		{"allow: asks", alice, auth.Publish, "ok", 0, true, 1},
		{"allow: cached", alice, auth.Publish, "ok", 0, true, 1},
		{"deny: asks", alice, auth.Publish, "no", 0, false, 2},
		{"deny: cached", alice, auth.Publish, "no", 0, false, 2},
		{"other action: asks", alice, auth.Read, "ok", 0, true, 3},
		{"other client: asks", bob, auth.Publish, "ok", 0, true, 4}, // 4 keys: the first is evicted
		{"evicted: asks", alice, auth.Publish, "ok", 0, true, 5},    // evicts alice/no
		{"still cached", bob, auth.Publish, "ok", 0, true, 5},
		{"evicted too: asks", alice, auth.Publish, "no", 0, false, 6},
		{"expired: asks", bob, auth.Publish, "ok", time.Minute, true, 7},
		{"5xx: not cached", alice, auth.Read, "down", 0, false, 8},
		{"5xx again: asks", alice, auth.Read, "down", 0, false, 9},
	}
	for _, st := range steps {
		clk.add(st.advance)
		if got := b.Authorize(st.c, st.action, st.topic); got != st.want {
			t.Fatalf("%s: Authorize = %v, want %v", st.name, got, st.want)
		}
		if got := s.calls.Load(); got != st.wantCalls {
			t.Fatalf("%s: %d service calls, want %d", st.name, got, st.wantCalls)
		}
		if n := b.aclc.len(); n > 3 {
			t.Fatalf("%s: cache holds %d entries, max 3", st.name, n)
		}
	}
}

func TestNoCache(t *testing.T) {
	s := newService(t, byTopic)
	b, _ := New(Config{ACLURL: s.URL, CacheTTL: -1})
	for range 3 {
		b.Authorize(client("alice", ""), auth.Publish, "ok")
	}
	if s.calls.Load() != 3 {
		t.Fatalf("%d calls with the cache off, want 3", s.calls.Load())
	}
}

func TestNewChecksURLs(t *testing.T) {
	for _, u := range []string{"ftp://x/auth", "localhost:8080/auth", "http://", "://bad"} {
		if _, err := New(Config{AuthURL: u}); err == nil {
			t.Errorf("auth URL %q accepted", u)
		}
		if _, err := New(Config{ACLURL: u}); err == nil {
			t.Errorf("ACL URL %q accepted", u)
		}
	}
	b, _ := New(Config{ACLURL: "http://127.0.0.1:1/acl"})
	if err := b.Authenticate(context.Background(), client("a", "b")); err == nil {
		t.Fatal("Authenticate without an auth URL succeeded")
	}
}

func TestAuthKeyHoldsNoPassword(t *testing.T) {
	a, b := authKey(client("alice", "pw1")), authKey(client("alice", "pw2"))
	if a == b {
		t.Fatal("different passwords share a cache key")
	}
	// Length prefixes keep fields apart: ("ab","c") is not ("a","bc").
	x := &auth.Client{ClientID: "ab", Username: "c", UsernameFlag: true}
	y := &auth.Client{ClientID: "a", Username: "bc", UsernameFlag: true}
	if authKey(x) == authKey(y) {
		t.Fatal("fields run together in the cache key")
	}
}

// A service that does not answer is asked again only after RetryAfter:
// meanwhile every check fails at once (closed) instead of each waiting for
// the timeout; once it answers again, it is asked as usual.
func TestDownServiceAskedAfterRetryAfter(t *testing.T) {
	var hits atomic.Int32
	var up atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if up.Load() {
			return // 200: allowed
		}
		select { // down: never answers in time
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	clk := &clock{t: time.Unix(1e9, 0)}
	b, err := New(Config{ACLURL: srv.URL, Timeout: 20 * time.Millisecond, RetryAfter: time.Second, CacheTTL: -1, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if b.Authorize(client("alice", ""), auth.Publish, fmt.Sprint("t", i)) {
			t.Fatal("allowed while the service is down")
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the service was asked %d times within RetryAfter, want 1", n)
	}
	up.Store(true)
	clk.add(time.Second)
	for i := range 3 {
		if !b.Authorize(client("alice", ""), auth.Publish, fmt.Sprint("t", i)) {
			t.Fatal("denied after the service came back")
		}
	}
	if n := hits.Load(); n != 4 {
		t.Fatalf("the service was asked %d times in all, want 4", n)
	}
}
