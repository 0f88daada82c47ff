package httpauth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
)

// byClientID answers by the client id asked about: the id names the
// answer.
func byClientID(body map[string]any) (int, string) {
	switch body["clientid"] {
	case "grant":
		return http.StatusOK, `{"result": "allow"}`
	case "plain":
		return http.StatusOK, `{"result":"default","reason":"ignored"}`
	case "refuse":
		return http.StatusOK, `{"result":"deny"}`
	case "nobody":
		return http.StatusNoContent, ""
	case "forbidden":
		return http.StatusForbidden, ""
	case "unknown":
		return http.StatusNotFound, `{"result":"allow"}`
	case "empty":
		return http.StatusOK, ""
	case "yes":
		return http.StatusOK, "yes"
	case "maybe":
		return http.StatusOK, `{"result":"maybe"}`
	case "null":
		return http.StatusOK, `{"result":null}`
	case "long":
		return http.StatusOK, `{"result":"allow","pad":"` + strings.Repeat("x", maxReply) + `"}`
	case "created":
		return http.StatusCreated, `{"result":"allow"}`
	}
	return http.StatusInternalServerError, `{"result":"allow"}`
}

func idClient(id string) *auth.Client {
	c := client("alice", "pw")
	c.ClientID = id
	return c
}

func TestAuthorizeClientID(t *testing.T) {
	s := newReplyService(t, byClientID)
	b, err := New(Config{ClientIDURL: s.URL, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		id      string
		want    auth.ClientIDDecision
		wantErr bool // a failure, not a decision; the decision is then Denied
	}{
		{"200 allow", "grant", auth.ClientIDAllowed, false},
		{"200 default, other fields ignored", "plain", auth.ClientIDDefault, false},
		{"200 deny", "refuse", auth.ClientIDDenied, false},
		{"204 default", "nobody", auth.ClientIDDefault, false},
		{"403 denies", "forbidden", auth.ClientIDDenied, false},
		{"404 denies, whatever the body", "unknown", auth.ClientIDDenied, false},
		{"200 without a body fails", "empty", auth.ClientIDDenied, true},
		{"200 with another body fails", "yes", auth.ClientIDDenied, true},
		{"200 with an unknown result fails", "maybe", auth.ClientIDDenied, true},
		{"200 with a null result fails", "null", auth.ClientIDDenied, true},
		{"200 with a reply too long fails", "long", auth.ClientIDDenied, true},
		{"201 fails", "created", auth.ClientIDDenied, true},
		{"500 fails", "boom", auth.ClientIDDenied, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.AuthorizeClientID(context.Background(), idClient(tc.id))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("AuthorizeClientID = %v, %v, want %v (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
	// The request says who the client is; it carries no password.
	ask := func(c *auth.Client) map[string]any {
		t.Helper()
		if _, err := b.AuthorizeClientID(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.last
	}
	cert := idClient("grant")
	cert.CertUsername = true
	anonymous := &auth.Client{ClientID: "nobody", RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 1883}, Version: 4}
	for _, tc := range []struct {
		c    *auth.Client
		want map[string]any
	}{
		{idClient("grant"), map[string]any{"clientid": "grant", "username": "alice", "anonymous": false, "cert": false,
			"remote_addr": "192.0.2.1:40000", "protocol_version": float64(5)}},
		{cert, map[string]any{"username": "alice", "anonymous": false, "cert": true}},
		{anonymous, map[string]any{"clientid": "nobody", "username": "", "anonymous": true, "cert": false,
			"remote_addr": "192.0.2.9:1883", "protocol_version": float64(4)}},
	} {
		body := ask(tc.c)
		for k, v := range tc.want {
			if body[k] != v {
				t.Errorf("request field %s = %v, want %v (body %v)", k, body[k], v, body)
			}
		}
		if _, ok := body["password"]; ok {
			t.Error("client id request carries a password")
		}
	}
}

// No client id URL: no opinion, and nobody is asked.
func TestAuthorizeClientIDNotConfigured(t *testing.T) {
	s := newReplyService(t, byClientID)
	b, err := New(Config{AuthURL: s.URL, ACLURL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := b.AuthorizeClientID(context.Background(), idClient("refuse")); d != auth.ClientIDDefault || err != nil {
		t.Fatalf("AuthorizeClientID = %v, %v, want default", d, err)
	}
	if s.calls.Load() != 0 {
		t.Fatal("the service was asked")
	}
}

func TestAuthorizeClientIDCache(t *testing.T) {
	s := newReplyService(t, byClientID)
	clk := &clock{t: time.Unix(1e9, 0)}
	b, err := New(Config{ClientIDURL: s.URL, CacheTTL: time.Minute, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	bob := client("bob", "")
	bob.ClientID = "grant"
	otherPort := idClient("grant")
	otherPort.RemoteAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40001}
	otherHost := idClient("grant")
	otherHost.RemoteAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 40000}
	cert := idClient("grant")
	cert.CertUsername = true
	emptyName := &auth.Client{ClientID: "grant", UsernameFlag: true}
	anonymous := &auth.Client{ClientID: "grant"}
	steps := []struct {
		name      string
		c         *auth.Client
		advance   time.Duration
		want      auth.ClientIDDecision
		wantErr   bool
		wantCalls int64
	}{
		{"allow: asks", idClient("grant"), 0, auth.ClientIDAllowed, false, 1},
		{"allow: cached", idClient("grant"), 0, auth.ClientIDAllowed, false, 1},
		{"other port: cached", otherPort, 0, auth.ClientIDAllowed, false, 1},
		{"other host: asks", otherHost, 0, auth.ClientIDAllowed, false, 2},
		{"other user: asks", bob, 0, auth.ClientIDAllowed, false, 3},
		{"certificate name: asks", cert, 0, auth.ClientIDAllowed, false, 4},
		{"empty username: asks", emptyName, 0, auth.ClientIDAllowed, false, 5},
		{"anonymous is not the empty username: asks", anonymous, 0, auth.ClientIDAllowed, false, 6},
		{"deny: asks", idClient("forbidden"), 0, auth.ClientIDDenied, false, 7},
		{"deny: cached", idClient("forbidden"), 0, auth.ClientIDDenied, false, 7},
		{"default: asks", idClient("nobody"), 0, auth.ClientIDDefault, false, 8},
		{"default: cached", idClient("nobody"), 0, auth.ClientIDDefault, false, 8},
		{"expired: asks", idClient("grant"), time.Minute, auth.ClientIDAllowed, false, 9},
		{"5xx: not cached", idClient("boom"), 0, auth.ClientIDDenied, true, 10},
		{"5xx again: asks", idClient("boom"), 0, auth.ClientIDDenied, true, 11},
		{"bad reply: not cached", idClient("yes"), 0, auth.ClientIDDenied, true, 12},
		{"bad reply again: asks", idClient("yes"), 0, auth.ClientIDDenied, true, 13},
	}
	for _, st := range steps {
		clk.add(st.advance)
		got, err := b.AuthorizeClientID(context.Background(), st.c)
		if got != st.want || (err != nil) != st.wantErr {
			t.Fatalf("%s: AuthorizeClientID = %v, %v, want %v (error: %v)", st.name, got, err, st.want, st.wantErr)
		}
		if n := s.calls.Load(); n != st.wantCalls {
			t.Fatalf("%s: %d service calls, want %d", st.name, n, st.wantCalls)
		}
	}
}

// A service that does not answer is an error (the broker then refuses the
// client), and is asked again only after RetryAfter.
func TestAuthorizeClientIDFailures(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name string
		url  string
	}{{"timeout", slow.URL}, {"connection refused", gone.URL}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1e9, 0)}
			b, err := New(Config{ClientIDURL: tc.url, Timeout: 20 * time.Millisecond, RetryAfter: time.Second, Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				d, err := b.AuthorizeClientID(context.Background(), idClient("grant"))
				if err == nil || d != auth.ClientIDDenied {
					t.Fatalf("AuthorizeClientID = %v, %v, want an error and denied", d, err)
				}
			}
			if b.idc.len() != 0 {
				t.Fatal("a failure was cached")
			}
		})
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the slow service was asked %d times within RetryAfter, want 1", n)
	}
	// The broker's own deadline counts too.
	b, _ := New(Config{ClientIDURL: slow.URL, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.AuthorizeClientID(ctx, idClient("grant")); !errors.Is(err, context.Canceled) {
		t.Fatalf("AuthorizeClientID with a cancelled context = %v", err)
	}
}

func TestNewChecksClientIDURL(t *testing.T) {
	for _, u := range []string{"ftp://x/id", "localhost:8080/id", "http://"} {
		if _, err := New(Config{ClientIDURL: u}); err == nil || !strings.Contains(err.Error(), "client id URL") {
			t.Errorf("client id URL %q: %v", u, err)
		}
	}
}
