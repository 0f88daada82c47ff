package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ternmq/tern/admin"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestProductionExample: examples/production.yaml, with the files it names
// made for the test, passes tern check-config, serves TLS clients with
// users from the password file, and runs the admin server with the token
// of its token file.
func TestProductionExample(t *testing.T) {
	e := newExamplesEnv(t)
	cfg := e.load(t, "production.yaml") // also writes the file with the test's paths
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config", filepath.Join(e.dir, "production.yaml")}, nil, &out, &errb); code != 0 {
		t.Fatalf("check-config: code %d: %s", code, errb.String())
	}
	if cfg.LogFormat != "json" || cfg.sysInterval() <= 0 || len(cfg.Listeners) != 2 {
		t.Fatalf("config %+v", cfg)
	}
	// The file's admin server: on loopback, with a token file (load moved
	// it to a free port).
	file := defaultConfig()
	if err := loadConfig(filepath.Join("..", "..", "examples", "production.yaml"), &file); err != nil {
		t.Fatal(err)
	}
	if a, explicit := file.Admin.address(); !explicit || !admin.IsLoopbackAddress(a) || file.Admin.TokenFile == "" || file.Admin.Token != "" {
		t.Fatalf("admin section %+v: want a loopback address and a token_file", file.Admin)
	}
	addr := serveAll(t, cfg, nil)[0].String()
	nc, err := tls.Dial("tcp", addr, e.pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := mt.Wrap(t, nc, packet.V5)
	if ack := c.ConnectWith(&packet.Connect{ProtocolLevel: packet.V5, ClientID: "alice-1", CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("alice-pw")}); ack.ReasonCode != 0 {
		t.Fatalf("alice: CONNACK %v", ack.ReasonCode)
	}
	base := "http://" + *cfg.Admin.Address
	if code, body := adminDo(t, "GET", base+"/api/v1/clients/alice-1", ""); code != 200 || !strings.Contains(body, `"connected":true`) {
		t.Errorf("GET the client on loopback without the token: %d %s", code, body)
	}
	kick := base + "/api/v1/clients/alice-1/disconnect"
	if code, _ := adminDo(t, "POST", kick, ""); code != 401 {
		t.Errorf("kick without the token: %d, want 401", code)
	}
	if code, body := adminDo(t, "POST", kick, "Bearer "+exampleAdminToken); code != 204 {
		t.Errorf("kick with the token: %d %s", code, body)
	}
	if ps := c.ExpectClosed(mt.Timeout); len(ps) != 1 || ps[0].(*packet.Disconnect).ReasonCode != packet.AdministrativeAction {
		t.Errorf("kicked: got %v, want DISCONNECT 0x98", ps)
	}
}

// unitFile reads examples/tern.service into its settings: key -> values
// in order (a key may repeat).
func unitFile(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "examples", "tern.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := make(map[string][]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("tern.service: line %q", line)
		}
		settings[k] = append(settings[k], v)
	}
	return settings
}

// TestSystemdUnit: the unit's commands are real tern commands with real
// flags, it runs as the tern user with the hardening settings, and the
// production configuration's data directory is writable under it.
func TestSystemdUnit(t *testing.T) {
	u := unitFile(t)
	one := func(k string) string {
		if len(u[k]) != 1 {
			t.Fatalf("tern.service: %s set %d times", k, len(u[k]))
		}
		return u[k][0]
	}
	start := strings.Fields(one("ExecStart"))
	if len(start) < 2 || start[0] != "/usr/local/bin/tern" || start[1] != "serve" {
		t.Fatalf("ExecStart %q", start)
	}
	var f serveFlags
	fs := f.flagSet(io.Discard)
	if err := fs.Parse(start[2:]); err != nil || fs.NArg() != 0 {
		t.Fatalf("ExecStart flags %q: %v (left %q)", start[2:], err, fs.Args())
	}
	if f.config != "/etc/tern/tern.yaml" {
		t.Fatalf("ExecStart config %q", f.config)
	}
	if pre := strings.Fields(one("ExecStartPre")); !slices.Equal(pre, []string{"/usr/local/bin/tern", "check-config", f.config}) {
		t.Fatalf("ExecStartPre %q", pre)
	}
	for k, want := range map[string]string{
		"ExecReload": "/bin/kill -HUP $MAINPID", "User": "tern", "NoNewPrivileges": "true",
		"ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true", "PrivateDevices": "true",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "LimitNOFILE": "1048576",
	} {
		if got := one(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !slices.Contains(u["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q lacks @system-service", u["SystemCallFilter"])
	}
	cfg := defaultConfig()
	if err := loadConfig(filepath.Join("..", "..", "examples", "production.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if rw := one("ReadWritePaths"); rw != cfg.Storage.DataDir {
		t.Errorf("ReadWritePaths %q, production.yaml's data_dir %q", rw, cfg.Storage.DataDir)
	}
}
