package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func TestSubFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want subConfig
	}{
		{"one topic", []string{"-t", "a/#"}, subConfig{topics: []string{"a/#"}}},
		{"repeated topics", []string{"-t", "a", "--topic", "b/+", "-t", "$SYS/#"}, subConfig{topics: []string{"a", "b/+", "$SYS/#"}}},
		{"output flags", []string{"-t", "a", "-v", "-N", "-R"}, subConfig{topics: []string{"a"}, verbose: true, noEOL: true, noRetained: true}},
		{"long output flags", []string{"-t", "a", "--verbose", "--count", "3", "--timeout", "2.5"},
			subConfig{topics: []string{"a"}, verbose: true, count: 3, timeout: 2.5}},
		{"count and timeout", []string{"-t", "a", "-C", "10", "-W", "5", "-q", "1"},
			subConfig{topics: []string{"a"}, count: 10, timeout: 5, clientFlags: clientFlags{qos: 1}}},
		{"shared subscription", []string{"-t", "$share/g/a/#"}, subConfig{topics: []string{"$share/g/a/#"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := parseSub(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			got, want := *cfg, tc.want
			if !slices.Equal(got.topics, want.topics) || got.verbose != want.verbose || got.count != want.count ||
				got.timeout != want.timeout || got.noEOL != want.noEOL || got.noRetained != want.noRetained ||
				got.qos != want.qos {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestSubFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "at least one -t"},
		{[]string{"-v"}, "at least one -t"},
		{[]string{"-t", "a/#/b"}, "wildcard"},
		{[]string{"-t", "a", "-t", ""}, "empty"},
		{[]string{"-t", "a", "-C", "-1"}, "-C -1"},
		{[]string{"-t", "a", "-W", "-2"}, "-W -2"},
		{[]string{"-t", "a", "b"}, "unexpected argument"},
	}
	for _, tc := range cases {
		_, _, err := parseSub(tc.args, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestFormatMessage(t *testing.T) {
	p := &packet.Publish{Topic: "a/b", Payload: []byte("x y")}
	for _, tc := range []struct {
		format string
		eol    bool
		want   string
	}{
		{"plain", true, "x y\n"},
		{"topic", true, "a/b x y\n"},
		{"plain", false, "x y"},
		{"topic", false, "a/b x y"},
		{"json", true, `{"topic":"a/b","qos":0,"retain":false,"dup":false,"payload":"x y"}` + "\n"},
	} {
		if got := string(formatMessage(nil, p, tc.format, tc.eol)); got != tc.want {
			t.Errorf("format=%v eol=%v: %q, want %q", tc.format, tc.eol, got, tc.want)
		}
	}
}

func TestSubExitCodes(t *testing.T) {
	port := listenAndClose(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-help"}, exitOK, "Usage: tern sub"},
		{[]string{}, exitUsage, "tern sub: at least one -t topic is required\n"},
		{[]string{"-t", "a", "-h", "127.0.0.1", "-p", port}, exitFail, "tern sub: dial tcp 127.0.0.1:" + port},
	} {
		var stderr bytes.Buffer
		if code := runSub(t.Context(), tc.args, io.Discard, &stderr); code != tc.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tc.args, code, tc.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: stderr %q, want %q", tc.args, stderr.String(), tc.stderr)
		}
	}
}

// listenAndClose returns a loopback port that nothing listens on.
func listenAndClose(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return port
}

// lineWriter is an io.Writer for a command's output that hands on each
// line as it is written.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no output line")
	}
	return ""
}

// tern sub --json, over a persistent session (-c, the reconnecting
// client), prints a retained message and a live one with their
// properties; binary payloads come out in base64.
func TestSubJSON(t *testing.T) {
	b := mqtttest.StartBroker(t, broker.Options{})
	host, port, _ := net.SplitHostPort(b.Addr)
	ctx := context.Background()
	pub, err := client.Connect(ctx, client.Options{Address: b.Addr, Version: packet.V5, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	retained := &packet.Publish{Topic: "j/r", QoS: 1, Retain: true, Payload: []byte("héllo"),
		Properties: packet.Properties{User: []packet.UserProperty{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}},
			ContentType: "text/plain", ResponseTopic: "j/reply", CorrelationData: []byte("c1"), MessageExpiry: func() *uint32 { v := uint32(300); return &v }()}}
	if err := pub.Publish(ctx, retained); err != nil {
		t.Fatal(err)
	}
	out := &lineWriter{lines: make(chan string, 10)}
	var stderr bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- runSub(ctx, []string{"-h", host, "-p", port, "-V", "5", "-c", "-i", "json-sub", "-q", "1",
			"-t", "j/#", "--json", "-C", "2"}, out, &stderr)
	}()
	var m map[string]any
	if err := json.Unmarshal([]byte(nextLine(t, out.lines)), &m); err != nil {
		t.Fatal(err)
	}
	props, _ := m["properties"].(map[string]any)
	if m["topic"] != "j/r" || m["payload"] != "héllo" || m["retain"] != true || m["qos"] != 1.0 ||
		props["content_type"] != "text/plain" || props["response_topic"] != "j/reply" ||
		props["correlation_data"] != "c1" || props["message_expiry"] == nil ||
		fmt.Sprint(props["user_properties"]) != "[map[key:a value:1] map[key:a value:2]]" {
		t.Fatalf("retained message: %v", m)
	}
	// The retained message came, so the subscription is in place.
	if err := pub.Publish(ctx, &packet.Publish{Topic: "j/bin", QoS: 1, Payload: []byte{0xff, 0x00}}); err != nil {
		t.Fatal(err)
	}
	if l := nextLine(t, out.lines); l != `{"topic":"j/bin","qos":1,"retain":false,"dup":false,"payload_base64":"/wA="}` {
		t.Fatalf("binary message: %s", l)
	}
	select {
	case c := <-code:
		if c != exitOK {
			t.Fatalf("exit %d: %s", c, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tern sub did not exit after -C 2")
	}
}

func TestSubFormatFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "a"}, "plain"},
		{[]string{"-t", "a", "-v"}, "topic"},
		{[]string{"-t", "a", "--json"}, "json"},
		{[]string{"-t", "a", "-F", "json"}, "json"},
		{[]string{"-t", "a", "-F", "topic", "-v"}, "topic"},
	} {
		cfg, _, err := parseSub(tc.args, io.Discard)
		if err != nil || cfg.format != tc.want {
			t.Errorf("%q: format %v, %v; want %s", tc.args, cfg, err, tc.want)
		}
	}
	for _, args := range [][]string{{"-t", "a", "-F", "xml"}, {"-t", "a", "-v", "--json"}, {"-t", "a", "-F", "plain", "--json"}} {
		if _, _, err := parseSub(args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
