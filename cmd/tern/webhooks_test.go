package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestServeWebhooks: the webhooks section of the configuration makes
// serve POST the broker's events, and shutdown sends the last ones.
func TestServeWebhooks(t *testing.T) {
	var mu sync.Mutex
	var events []map[string]any
	var auth []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var batch []map[string]any
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		mu.Lock()
		events = append(events, batch...)
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer rcv.Close()
	got := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), events...)
	}

	cfg := defaultConfig()
	text := "listeners:\n  - address: 127.0.0.1:0\nwebhooks:\n  - url: " + rcv.URL + "/mqtt\n" +
		"    events: [client.connected, message.published]\n    topics: [\"sensors/#\"]\n" +
		"    headers: {Authorization: \"Bearer t0ken\"}\n    timeout: 2s\n"
	if err := loadConfig(writeConfig(t, text), &cfg); err != nil {
		t.Fatal(err)
	}
	addr := startServe(t, cfg)
	c := mt.Dial(t, addr, packet.V311)
	c.Connect("dev", true)
	c.Send(&packet.Publish{Topic: "other", Payload: []byte("x")})
	c.Send(&packet.Publish{Topic: "sensors/a", Payload: []byte("y")})
	mt.Eventually(t, "2 events", func() bool { return len(got()) == 2 })
	e := got()
	if e[0]["event"] != "client.connected" || e[1]["event"] != "message.published" || e[1]["topic"] != "sensors/a" ||
		e[1]["payload"] != "y" || e[0]["client_id"] != "dev" || e[0]["node"] == "" {
		t.Fatalf("events %v", e)
	}
	mu.Lock()
	defer mu.Unlock()
	if auth[0] != "Bearer t0ken" {
		t.Fatalf("Authorization %q", auth[0])
	}
}

// TestReloadKeepsWebhooks: webhooks are read at start; a SIGHUP with a
// changed section says so and keeps the running ones, and one with a bad
// URL is refused as a whole.
func TestReloadKeepsWebhooks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tern.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("webhooks:\n  - url: http://127.0.0.1:9/a\n")
	b := &brokerProc{addr: freeAddr(t), out: &mt.SyncBuffer{}, start0: time.Now()}
	b.args = []string{"serve", "--listen", b.addr, "--config", path, "--no-persist", "--log-level", "info", "--admin", ""}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Log(b.out.String())
		}
	}()
	hup := func(logLine string) {
		t.Helper()
		before := strings.Count(b.out.String(), logLine)
		b.cmd.Process.Signal(syscall.SIGHUP)
		mt.Eventually(t, logLine, func() bool { return strings.Count(b.out.String(), logLine) > before })
	}
	write("webhooks:\n  - url: http://127.0.0.1:9/b\n")
	hup("the changed webhooks section applies after a restart")
	write("webhooks:\n  - url: hooks.example/b\n")
	hup("reload refused")
	if !strings.Contains(b.out.String(), "http or https") {
		t.Errorf("the refusal does not say why:\n%s", b.out.String())
	}
}

// The webhooks example in the README loads and passes check-config's
// checks.
func TestReadmeWebhooksLoads(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "### Webhooks")
	_, rest, ok2 := strings.Cut(rest, "```yaml\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no yaml block under \"### Webhooks\" in README.md")
	}
	cfg := defaultConfig()
	if err := loadConfig(writeConfig(t, block), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Webhooks) != 1 || len(cfg.Webhooks[0].Events) != 5 || cfg.Webhooks[0].Timeout != 5*time.Second {
		t.Fatalf("webhooks %+v", cfg.Webhooks)
	}
	if err := validateConfig(cfg); err != nil {
		t.Fatal(err)
	}
}
