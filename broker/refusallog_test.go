package broker_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// logLines returns the JSON log lines in buf whose msg is msg.
func logLines(t *testing.T, buf *mt.SyncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestRefusedConnectLogsOneLine: each refused CONNECT logs exactly one
// line at info with the client id, its address and the reason.
func TestRefusedConnectLogsOneLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		connect *packet.Connect
		reason  string
	}{
		{"bad credentials", &packet.Connect{ClientID: "c1", CleanStart: true, UsernameFlag: true, Username: "u",
			PasswordFlag: true, Password: []byte("wrong")}, "bad username or password"},
		{"anonymous", &packet.Connect{ClientID: "c2", CleanStart: true}, "not authorized"},
		{"keep alive", &packet.Connect{ClientID: "c3", CleanStart: true, KeepAlive: 3600, UsernameFlag: true, Username: "u",
			PasswordFlag: true, Password: []byte("p")}, "keep alive outside the server's maximum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs mt.SyncBuffer
			b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"u": "p"}),
				MaxKeepAlive: time.Minute, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			c := mt.Dial(t, b.Addr, packet.V311)
			if ack := c.ConnectWith(tc.connect); ack.ReasonCode == packet.Accepted {
				t.Fatal("accepted")
			}
			c.ExpectClosed(mt.Timeout)
			lines := logLines(t, &logs, "connect refused")
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1: %s", len(lines), logs.String())
			}
			l := lines[0]
			if l["level"] != "INFO" || l["client"] != tc.connect.ClientID || l["reason"] != tc.reason ||
				!strings.HasPrefix(l["remote"].(string), "127.0.0.1:") {
				t.Fatalf("log line %v", l)
			}
		})
	}
}

// TestRefusedConnectionsLogRateLimited: connections refused by a
// connection limit log at most one line a second, the next one counting
// those held back.
func TestRefusedConnectionsLogRateLimited(t *testing.T) {
	var logs mt.SyncBuffer
	b := mt.StartBroker(t, broker.Options{MaxConnections: 1, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	first := mt.Dial(t, b.Addr, packet.V311)
	first.Connect("first", true)
	const flood = 20
	for range flood {
		mt.Dial(t, b.Addr, packet.V311).ExpectClosed(mt.Timeout)
	}
	lines := logLines(t, &logs, "connection refused")
	if len(lines) < 1 || len(lines) > 2 { // a slow machine may cross one second
		t.Fatalf("%d lines for %d refusals: %s", len(lines), flood, logs.String())
	}
	if l := lines[0]; l["level"] != "INFO" || l["reason"] == "" || !strings.HasPrefix(l["remote"].(string), "127.0.0.1:") ||
		l["suppressed"] != 0.0 {
		t.Fatalf("log line %v", l)
	}
	time.Sleep(1100 * time.Millisecond)
	mt.Dial(t, b.Addr, packet.V311).ExpectClosed(mt.Timeout)
	lines = logLines(t, &logs, "connection refused")
	total := 0
	for _, l := range lines {
		total += 1 + int(l["suppressed"].(float64))
	}
	if total != flood+1 {
		t.Fatalf("lines account for %d refusals, want %d: %s", total, flood+1, logs.String())
	}
	if n := b.Stats().RefusedConnects.ConnectionLimit; n != flood+1 {
		t.Fatalf("RefusedConns %d", n)
	}
}
