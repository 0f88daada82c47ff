package ui_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ternmq/tern/admin/ui"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/internal/browsertest"
	"github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/packet"
)

var screenshot = flag.String("screenshot", "", "save the browser test's overview screenshot here (the README's is ../../docs/dashboard.png)")

const e2eToken = "e2e-token"

func TestFiles(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "app.css", "mqtt.js"} {
		b, err := fs.ReadFile(ui.Files, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty", name)
		}
	}
	// Nothing is fetched from elsewhere: no CDN, no remote fonts.
	err := fs.WalkDir(ui.Files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(ui.Files, name)
		if err != nil {
			return err
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s contains %q: the dashboard must work offline", name, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBrowser drives Debian's chromium (headless, through playwright-core
// on node) through every page of the dashboard, served with a fake admin
// API, and through the subscribe panel's MQTT-over-WebSocket client
// against a real broker. It fails, never skips, when a tool is missing:
// `make deps` installs them.
func TestBrowser(t *testing.T) {
	node, chromium := browsertest.Require(t, "testdata")

	// A real broker with a WebSocket listener for the subscribe panel. The
	// page's origin is the fake API's port, not the listener's: the
	// listener lets that origin in, as an operator's configuration must.
	b, err := broker.New(broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wsl, err := listener.Listen(listener.Config{Type: "ws", Address: "127.0.0.1:0", Origins: []string{"127.0.0.1:*"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(wsl) }()
	t.Cleanup(func() {
		b.Close()
		if err := <-served; err != nil && !errors.Is(err, broker.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(tcp)
	wsAddr := wsl.Addr().String()

	api := newFakeAPI(e2eToken, []listenerInfo{{Type: "tcp", Address: tcp.Addr().String()}, {Type: "ws", Address: wsAddr, Path: "/mqtt"}})
	srv := httptest.NewServer(api.handler(http.FileServerFS(ui.Files)))
	t.Cleanup(srv.Close)

	// The README's screenshot waits for a longer history in the charts.
	shot, points := *screenshot, "3"
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "dashboard.png")
	} else if shot, err = filepath.Abs(shot); err != nil {
		t.Fatal(err)
	} else {
		points = "15"
	}

	// The raw clients: one receives what the page publishes over
	// WebSocket, one publishes to the page.
	sub := mqtttest.Dial(t, tcp.Addr().String(), packet.V311)
	sub.Connect("e2e-listener", true)
	sub.Subscribe(1, 0, "e2e/from-page")
	pub := mqtttest.Dial(t, tcp.Addr().String(), packet.V311)
	pub.Connect("e2e-publisher", true)

	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	script := browsertest.Start(t, ctx, node, chromium, "testdata", "e2e.mjs",
		"TERN_UI_URL="+srv.URL+"/",
		"TERN_WS_URL=ws://"+wsAddr+"/mqtt",
		"TERN_TOKEN="+e2eToken,
		"TERN_SCREENSHOT="+shot,
		"TERN_SCREENSHOT_POINTS="+points,
		"TERN_CODEC="+codecCases(t),
	)
	nodeFailed := func(err error) {
		t.Helper()
		script.Fatal(t, err)
	}

	// The page subscribes (the broker counts e2e-listener's subscription
	// and the page's), then gets one message at QoS 0 and, after more
	// than one and a half keep alive periods of the page's 2 s, one at
	// QoS 1: the second arrives only if the page kept the connection up
	// with PINGREQ.
	for b.Stats().Subscriptions < 2 {
		select {
		case <-script.Done():
			nodeFailed(errors.Join(errors.New("exited before the page subscribed"), script.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
	pub.Send(&packet.Publish{Topic: "e2e/ws/zero", Payload: []byte("hello over websocket")})
	select {
	case <-script.Done():
		nodeFailed(errors.Join(errors.New("exited early"), script.Err()))
	case <-time.After(3500 * time.Millisecond):
	}
	pub.Send(&packet.Publish{Topic: "e2e/ws/one", QoS: 1, PacketID: 1, Payload: []byte("still here after a keep alive")})
	if ack := mqtttest.Expect[*packet.Puback](pub); ack.PacketID != 1 {
		t.Fatalf("PUBACK %d, want 1", ack.PacketID)
	}

	// What the page publishes over its WebSocket connection.
	got := make(chan packet.Packet, 1)
	go func() {
		p, err := sub.ReadWithin(40 * time.Second)
		if err != nil {
			got <- nil
			return
		}
		got <- p
	}()
	var fromPage *packet.Publish
	select {
	case p := <-got:
		fromPage, _ = p.(*packet.Publish)
	case <-script.Done():
		nodeFailed(errors.Join(errors.New("exited before publishing over WebSocket"), script.Err()))
	}
	if fromPage == nil || fromPage.Topic != "e2e/from-page" || string(fromPage.Payload) != "hello from the page" {
		t.Fatalf("the page's WebSocket publish: got %v; want e2e/from-page \"hello from the page\"\n%s", fromPage, script.Output())
	}

	script.Wait(t, 40*time.Second)
	t.Logf("node e2e.mjs:\n%s", script.Output())

	// What the page asked of the API.
	api.mu.Lock()
	defer api.mu.Unlock()
	if !slices.Equal(api.kicked, []string{"sensor-1"}) {
		t.Errorf("kicked %q, want [sensor-1]", api.kicked)
	}
	if api.unauth == 0 {
		t.Errorf("no request was refused for want of the token: the token form was not exercised")
	}
	if !slices.Equal(api.deleted, []string{"archiver"}) {
		t.Errorf("deleted sessions %q, want [archiver]", api.deleted)
	}
	if !slices.Equal(api.unretain, []string{"home/door"}) {
		t.Errorf("deleted retained %q, want [home/door]", api.unretain)
	}
	if len(api.published) != 1 {
		t.Fatalf("published %+v, want one", api.published)
	}
	p := api.published[0]
	if p.Topic != "e2e/api" || p.Payload == nil || *p.Payload != "from the API" || p.QoS != 1 || !p.Retain || p.ContentType != "text/plain" {
		t.Errorf("published %+v", p)
	}
	if api.polls < 3 {
		t.Errorf("stats polled %d times, want several", api.polls)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Errorf("screenshot %s: %v (%d bytes)", shot, err, sizeOf(fi))
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}

// codecCases encodes packets with the Go codec for e2e.mjs to compare
// with the page's MQTT client byte for byte; the names are the script's.
func codecCases(t *testing.T) string {
	t.Helper()
	enc := func(p packet.Packet) string {
		b, err := p.Append(nil, packet.V311)
		if err != nil {
			t.Fatalf("encode %s: %v", p.Type(), err)
		}
		return hex.EncodeToString(b)
	}
	cases := map[string]string{
		"connect": enc(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanStart: true, KeepAlive: 30, ClientID: "codec"}),
		"connect-auth": enc(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanStart: true, KeepAlive: 65535, ClientID: "zé",
			UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("pässword")}),
		"subscribe":     enc(&packet.Subscribe{PacketID: 10, Subscriptions: []packet.Subscription{{Filter: "a/+/c", QoS: 1}, {Filter: "#", QoS: 2}}}),
		"unsubscribe":   enc(&packet.Unsubscribe{PacketID: 65535, Filters: []string{"a/+/c"}}),
		"publish-short": enc(&packet.Publish{Topic: "t", Payload: bytes.Repeat([]byte("x"), 124)}),                     // remaining length 127
		"publish-128":   enc(&packet.Publish{Topic: "t", Payload: bytes.Repeat([]byte("x"), 125)}),                     // 128: two length bytes
		"publish-16384": enc(&packet.Publish{Topic: "t/ü", Retain: true, Payload: bytes.Repeat([]byte("y"), 16384-6)}), // 16384: three length bytes
		"puback":        enc(&packet.Puback{PacketID: 258}),
		"pubrec":        enc(&packet.Pubrec{PacketID: 7}),
		"pubcomp":       enc(&packet.Pubcomp{PacketID: 7}),
		"pingreq":       enc(&packet.Pingreq{}),
		"disconnect":    enc(&packet.Disconnect{}),
	}
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
