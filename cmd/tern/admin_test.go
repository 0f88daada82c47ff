package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/admin"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// adminDo requests url with an optional Authorization header.
func adminDo(t *testing.T, method, url, authz string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeAdmin runs tern serve with the admin server on a free port:
// probes, metrics, the dashboard, and reload through the API with a token
// and with an admin user of the password file.
func TestServeAdmin(t *testing.T) {
	dir := t.TempDir()
	pwPath, _ := authFiles(t, dir, map[string]string{"root": "root-pw", "bob": "bob-pw"}, "")
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := "password_file: " + pwPath + "\nallow_anonymous: true\nadmin:\n  token_file: " + tokenPath + "\n  users: [root]\n"
	cfgPath := writeConfig(t, good)
	mqttAddr, adminAddr := freeAddr(t), freeAddr(t)
	base := "http://" + adminAddr

	ctx, cancel := context.WithCancel(context.Background())
	var stderr mt.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", mqttAddr, "--no-persist", "--config", cfgPath, "--admin", adminAddr}, nil, io.Discard, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
		if t.Failed() {
			t.Log(stderr.String())
		}
	}()
	mt.Eventually(t, "readyz 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	c := mt.Dial(t, mqttAddr, packet.V311)
	c.Connect("one", true)

	if code, body := adminDo(t, "GET", base+"/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("healthz %d %s", code, body)
	}
	code, body := adminDo(t, "GET", base+"/metrics", "")
	if code != 200 || !strings.Contains(body, "tern_connections 1\n") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics %d:\n%s", code, body)
	}
	if code, body := adminDo(t, "GET", base+"/api/v1/info", ""); code != 200 || !strings.Contains(body, mqttAddr) {
		t.Errorf("info %d %s", code, body)
	}
	if code, body := adminDo(t, "GET", base+"/", ""); code != 200 || !strings.Contains(body, "<title>") {
		t.Errorf("dashboard %d %s", code, body)
	}

	basic := func(user, pw string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pw)
		return r.Header.Get("Authorization")
	}
	for _, tt := range []struct {
		name, authz string
		code        int
	}{
		{"anonymous", "", 401},
		{"wrong token", "Bearer tok-2", 401},
		{"token", "Bearer tok-1", 204},
		{"admin user", basic("root", "root-pw"), 204},
		{"admin user, wrong password", basic("root", "bob-pw"), 401},
		{"user who is not an admin", basic("bob", "bob-pw"), 403},
	} {
		if code, body := adminDo(t, "POST", base+"/api/v1/reload", tt.authz); code != tt.code {
			t.Errorf("reload as %s: %d %s, want %d", tt.name, code, body, tt.code)
		}
	}
	// A refused configuration is a 400 and changes nothing.
	os.WriteFile(cfgPath, []byte(good+"limits:\n  queue_full_policy: sometimes\n"), 0o600)
	if code, body := adminDo(t, "POST", base+"/api/v1/reload", "Bearer tok-1"); code != 400 || !strings.Contains(body, "queue_full_policy") {
		t.Errorf("refused reload: %d %s", code, body)
	}
	// A new token is in force after a reload.
	os.WriteFile(tokenPath, []byte("tok-2"), 0o600)
	os.WriteFile(cfgPath, []byte(good), 0o600)
	if code, body := adminDo(t, "POST", base+"/api/v1/reload", "Bearer tok-1"); code != 204 {
		t.Errorf("reload: %d %s", code, body)
	}
	if code, _ := adminDo(t, "POST", base+"/api/v1/reload", "Bearer tok-1"); code != 401 {
		t.Errorf("old token after reload: %d", code)
	}
	if code, _ := adminDo(t, "POST", base+"/api/v1/reload", "Bearer tok-2"); code != 204 {
		t.Errorf("new token after reload: %d", code)
	}
}

// The default admin port taken (by another broker on this machine) is a
// warning; an address asked for and taken is an error.
func TestAdminPortTaken(t *testing.T) {
	if l, err := net.Listen("tcp", defaultAdminAddress); err == nil {
		defer l.Close()
	} // else someone has it already: taken all the same
	var logBuf mt.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	cfg := defaultConfig()
	l, err := listenAdmin(cfg, adminAuthOrFatal(t, cfg), log)
	if err != nil || l != nil {
		t.Fatalf("default port taken: %v, %v", l, err)
	}
	if !strings.Contains(logBuf.String(), "admin server not started") {
		t.Errorf("no warning: %q", logBuf.String())
	}
	cfg.Admin.Address = new(defaultAdminAddress)
	if l, err := listenAdmin(cfg, adminAuthOrFatal(t, cfg), log); err == nil {
		l.Close()
		t.Fatal("an explicit address that is taken did not fail")
	}

	// serve goes on without it.
	cfg = defaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Storage.Persist = new(false)
	opts, err := brokerOptions(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(ctx, cfg, opts, func(a []net.Addr) { addrc <- a[0].String() }, nil) }()
	select {
	case addr := <-addrc:
		c := mt.Dial(t, addr, packet.V5)
		c.Connect("c", true)
	case err := <-done:
		t.Fatalf("serve with the default admin port taken: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logBuf.String(), "admin server not started"); n != 2 {
		t.Errorf("%d warnings, want one per start:\n%s", n, logBuf.String())
	}
}

func adminAuthOrFatal(t *testing.T, cfg Config) (a admin.Auth) {
	t.Helper()
	a, err := adminAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAdminConfig(t *testing.T) {
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "token")
	os.WriteFile(tokenPath, []byte("  \n"), 0o600)
	for _, tt := range []struct {
		name, yaml, err string
	}{
		{"token and token_file", "admin:\n  token: a\n  token_file: " + tokenPath + "\n", "give one"},
		{"empty token file", "admin:\n  token_file: " + tokenPath + "\n", "empty"},
		{"missing token file", "admin:\n  token_file: " + tokenPath + ".gone\n", "no such file"},
		{"users without password file", "admin:\n  users: [root]\n", "password_file"},
		{"non-loopback without credentials", "admin:\n  address: 0.0.0.0:0\n", "not a loopback address"},
		{"unknown key", "admin:\n  passwd: x\n", "field passwd not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			err := loadConfig(writeConfig(t, tt.yaml), &cfg)
			if err == nil {
				var a admin.Auth
				if a, err = adminAuth(cfg); err == nil {
					var l net.Listener
					if l, err = listenAdmin(cfg, a, discard); l != nil {
						l.Close()
					}
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one with %q", err, tt.err)
			}
		})
	}
	// With a token, any address will do.
	cfg := defaultConfig()
	if err := loadConfig(writeConfig(t, "admin:\n  address: 0.0.0.0:0\n  token: t\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	l, err := listenAdmin(cfg, adminAuthOrFatal(t, cfg), discard)
	if err != nil || l == nil {
		t.Fatalf("0.0.0.0 with a token: %v", err)
	}
	l.Close()
	// serve refuses to start with it.
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code := run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--no-persist", "--admin", ":0"}, nil, io.Discard, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "not a loopback address") {
		t.Fatalf("serve with an open admin address and no credentials: %d %s", code, stderr.String())
	}
}

// TestAdminReloadWhileStopping: a reload asked for once the serve loop has
// ended is refused at once; it does not wait for the admin server's
// shutdown (which waits for it). A webhook receiver that holds its
// request keeps the shutdown, and so the admin server, going meanwhile.
func TestAdminReloadWhileStopping(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hook.Close()
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()

	cfgPath := writeConfig(t, "admin:\n  token: tok\nwebhooks:\n  - url: "+hook.URL+"\n    events: [client.connected]\n")
	mqttAddr, adminAddr := freeAddr(t), freeAddr(t)
	base := "http://" + adminAddr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr mt.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", mqttAddr, "--no-persist", "--config", cfgPath, "--admin", adminAddr}, nil, io.Discard, &stderr)
	}()
	ready := func(want int) bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == want
	}
	mt.Eventually(t, "readyz 200", func() bool { return ready(200) })
	c := mt.Dial(t, mqttAddr, packet.V311)
	c.Connect("one", true) // an event for the receiver to hold

	cancel()
	mt.Eventually(t, "readyz 503", func() bool { return ready(503) })
	req, _ := http.NewRequest("POST", base+"/api/v1/reload", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		t.Errorf("reload while stopping: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "shutting down") {
			t.Errorf("reload while stopping: %d %s", resp.StatusCode, b)
		}
	}
	unblock()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d: %s", code, stderr.String())
	}
}
