package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/auth/scram"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tern.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigStrict(t *testing.T) {
	cases := []struct {
		name, text, wantErr string
	}{
		{"unknown key has its line", "log_level: info\nlisteners:\n  - address: 127.0.0.1:0\n    adress: typo\n", "line 4"},
		{"unknown top-level key", "log_level: info\nport: 1883\n", "line 2"},
		{"bad duration", "limits:\n  connect_timeout: soon\n", "line 2"},
		{"valid", "listeners:\n  - address: 127.0.0.1:0\nlimits:\n  connect_timeout: 3s\n  max_queued_messages: 10\nusers:\n  alice: secret\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			err := loadConfig(writeConfig(t, tc.text), &cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Limits.ConnectTimeout != 3*time.Second || cfg.Limits.MaxQueuedMessages != 10 || cfg.LogLevel != "info" {
					t.Fatalf("config %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestBrokerOptions(t *testing.T) {
	cfg := defaultConfig()
	cfg.Limits.QueueFullPolicy = "drop-sideways"
	if _, err := brokerOptions(cfg, slog.Default()); err == nil {
		t.Fatal("bad queue policy accepted")
	}
	cfg = defaultConfig()
	cfg.MQTT.SharedStrategy = "loudest"
	if _, err := brokerOptions(cfg, slog.Default()); err == nil {
		t.Fatal("bad shared strategy accepted")
	}
	if err := loadConfig(writeConfig(t, "mqtt:\n  shared_strategy: sticky\n  wildcard_subscriptions: false\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	opts, err := brokerOptions(cfg, slog.Default())
	if err != nil || opts.SharedStrategy != broker.Sticky || !opts.DisableWildcards || opts.DisableShared {
		t.Fatalf("options %+v, %v", opts, err)
	}
}

// TestConfigPreAuthLimits: limits.max_connect_size and
// limits.max_preauth_memory reach the broker, which holds a CONNECT to
// the configured size.
func TestConfigPreAuthLimits(t *testing.T) {
	cfg := defaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	if err := loadConfig(writeConfig(t, "limits:\n  max_connect_size: 4096\n  max_preauth_memory: 1048576\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	opts, err := brokerOptions(cfg, slog.Default())
	if err != nil || opts.MaxConnectSize != 4096 || opts.MaxPreAuthMemory != 1<<20 {
		t.Fatalf("options %+v, %v", opts, err)
	}
	addr := startServe(t, cfg)
	big := mt.Dial(t, addr, packet.V311)
	big.Send(&packet.Connect{ClientID: "big", CleanStart: true, Will: &packet.Will{Topic: "w", Payload: make([]byte, 5000)}})
	if got := big.ExpectClosed(mt.Timeout); len(got) != 0 {
		t.Fatalf("CONNECT over max_connect_size answered with %v", got)
	}
	small := mt.Dial(t, addr, packet.V311)
	if ack := small.Connect("small", true); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
}

func TestDefaultListensOnLoopback(t *testing.T) {
	cfg := defaultConfig()
	if len(cfg.Listeners) != 1 || cfg.Listeners[0].Address != "127.0.0.1:1883" {
		t.Fatalf("default listeners %+v, want 127.0.0.1:1883 only", cfg.Listeners)
	}
}

// startServe runs serve with cfg until the test ends and returns the first
// listener's address.
func startServe(t *testing.T, cfg Config) string {
	t.Helper()
	return startServeWith(t, cfg, nil)
}

// startServeWith is startServe with a reloader.
func startServeWith(t *testing.T, cfg Config, rl *reloader) string {
	t.Helper()
	return serveAll(t, cfg, rl)[0].String()
}

// serveAll runs serve with cfg until the test ends and returns every
// listener's address.
func serveAll(t *testing.T, cfg Config, rl *reloader) []net.Addr {
	t.Helper()
	if cfg.Storage.DataDir == defaultConfig().Storage.DataDir {
		cfg.Storage.DataDir = t.TempDir()
	}
	if cfg.Admin.Address == nil {
		cfg.Admin.Address = new("") // not the default port: tests run brokers in parallel
	}
	opts, err := brokerOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, opts, func(a []net.Addr) { addrc <- a }, rl) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(mt.Timeout):
		t.Fatal("serve did not start")
	}
	return nil
}

func TestServeUsersFromConfig(t *testing.T) {
	cfg := defaultConfig()
	if err := loadConfig(writeConfig(t, "listeners:\n  - address: 127.0.0.1:0\nusers:\n  alice: secret\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	addr := startServe(t, cfg)
	// Configuring users turns anonymous access off.
	anon := mt.Dial(t, addr, packet.V311)
	if ack := anon.Connect("anon", true); ack.ReasonCode != packet.RefusedNotAuthorized {
		t.Fatalf("anonymous CONNACK %#x, want 5", ack.ReasonCode)
	}
	alice := mt.Dial(t, addr, packet.V311)
	ack := alice.ConnectWith(&packet.Connect{ClientID: "a", CleanStart: true, UsernameFlag: true, Username: "alice",
		PasswordFlag: true, Password: []byte("secret")})
	if ack.ReasonCode != packet.Accepted {
		t.Fatalf("alice CONNACK %#x", ack.ReasonCode)
	}
	// The same user over v5 SCRAM-SHA-256.
	v5 := mt.Dial(t, addr, packet.V5)
	sc := scram.NewClient("alice", "secret")
	v5.Send(&packet.Connect{ProtocolLevel: packet.V5, ClientID: "a5", CleanStart: true,
		Properties: packet.Properties{AuthMethod: scram.Method, AuthData: sc.First()}})
	final, err := sc.Final(mt.Expect[*packet.Auth](v5).Properties.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	v5.Send(&packet.Auth{ReasonCode: packet.ContinueAuthentication, Properties: packet.Properties{AuthMethod: scram.Method, AuthData: final}})
	if ack := mt.Expect[*packet.Connack](v5); ack.ReasonCode != packet.Success || sc.Verify(ack.Properties.AuthData) != nil {
		t.Fatalf("SCRAM CONNACK %+v", ack)
	}
}

func TestServeShutdownFlushesAndCloses(t *testing.T) {
	cfg := defaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Storage.DataDir = t.TempDir()
	cfg.Admin.Address = new("")
	opts, _ := brokerOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, opts, func(a []net.Addr) { addrc <- a[0].String() }, nil) }()
	addr := <-addrc
	c := mt.Dial(t, addr, packet.V5)
	c.Connect("c", true)
	cancel()
	got := c.ExpectClosed(mt.Timeout)
	if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.ServerShuttingDown {
		t.Fatalf("v5 client got %+v at shutdown, want DISCONNECT 0x8B", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"bogus"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
	if code := run(context.Background(), []string{"serve", "--config", "/nonexistent.yaml"}, nil, &out, &errb); code != 2 {
		t.Fatalf("missing config: code %d", code)
	}
}

// The configuration file shown in the README loads, strictly, and makes a
// broker: its keys and values are real.
func TestReadmeConfigLoads(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "### Configuration file")
	_, rest, ok2 := strings.Cut(rest, "```yaml\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no yaml block under \"### Configuration file\" in README.md")
	}
	// The sample's files and certificates do not exist here.
	block = strings.NewReplacer("password_file: \"\"", "", "acl_file: \"\"", "").Replace(block)
	path := filepath.Join(t.TempDir(), "tern.yaml")
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	if err := loadConfig(path, &cfg); err != nil {
		t.Fatalf("README config: %v", err)
	}
	if _, _, _, err := buildAuth(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("README config auth: %v", err)
	}
}
