package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func TestPubFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want pubConfig
	}{
		{"message", []string{"-t", "a/b", "-m", "hello"}, pubConfig{topic: "a/b", message: "hello", repeat: 1}},
		{"long names", []string{"--topic", "a", "--message", "x y", "--retain", "--qos", "2"},
			pubConfig{topic: "a", message: "x y", retain: true, repeat: 1, clientFlags: clientFlags{qos: 2}}},
		{"empty message", []string{"-t", "a", "-m", ""}, pubConfig{topic: "a", repeat: 1}},
		{"file", []string{"-t", "a", "-f", "msg.bin"}, pubConfig{topic: "a", file: "msg.bin", repeat: 1}},
		{"stdin file", []string{"-t", "a", "-s"}, pubConfig{topic: "a", stdinFile: true, repeat: 1}},
		{"stdin file long", []string{"-t", "a", "--stdin-file"}, pubConfig{topic: "a", stdinFile: true, repeat: 1}},
		{"stdin lines", []string{"-t", "a", "-l"}, pubConfig{topic: "a", stdinLine: true, repeat: 1}},
		{"stdin lines long", []string{"-t", "a", "--stdin-line"}, pubConfig{topic: "a", stdinLine: true, repeat: 1}},
		{"null", []string{"-t", "a", "-n"}, pubConfig{topic: "a", null: true, repeat: 1}},
		{"null long", []string{"-t", "a", "--null-message", "-r"}, pubConfig{topic: "a", null: true, retain: true, repeat: 1}},
		{"repeat", []string{"-t", "a", "-m", "x", "--repeat", "5", "--repeat-delay", "0.5"},
			pubConfig{topic: "a", message: "x", repeat: 5, repeatDelay: 0.5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := parsePub(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			got := *cfg
			want := tc.want
			if got.topic != want.topic || got.message != want.message || got.file != want.file ||
				got.stdinFile != want.stdinFile || got.stdinLine != want.stdinLine || got.null != want.null ||
				got.retain != want.retain || got.repeat != want.repeat || got.repeatDelay != want.repeatDelay ||
				got.qos != want.qos {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestPubFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-m", "x"}, "-t topic is required"},
		{[]string{"-t", "a/#", "-m", "x"}, "wildcard"},
		{[]string{"-t", "a/+", "-m", "x"}, "wildcard"},
		{[]string{"-t", "a"}, "exactly one of"},
		{[]string{"-t", "a", "-m", "x", "-n"}, "exactly one of"},
		{[]string{"-t", "a", "-m", "", "-s"}, "exactly one of"},
		{[]string{"-t", "a", "-f", "f", "-l"}, "exactly one of"},
		{[]string{"-t", "a", "-m", "x", "--repeat", "0"}, "--repeat 0"},
		{[]string{"-t", "a", "-m", "x", "--repeat-delay", "-1"}, "--repeat-delay"},
		{[]string{"-t", "a", "-l", "--repeat", "2"}, "does not apply to -l"},
		{[]string{"-t", "a", "-m", "hello", "world"}, "unexpected argument \"world\""},
	}
	for _, tc := range cases {
		_, _, err := parsePub(tc.args, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestPubExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--help"}, exitOK, "Usage: tern pub"},
		{[]string{"-t", "a"}, exitUsage, "tern pub: give exactly one of -m, -f, -s, -l and -n\nRun 'tern pub --help' for usage.\n"},
		{[]string{"-x"}, exitUsage, "flag provided but not defined: -x"},
		// A missing file fails before any connection is tried.
		{[]string{"-t", "a", "-f", missing, "-p", "1"}, exitFail, "tern pub: open " + missing},
	} {
		var stderr bytes.Buffer
		if code := runPub(context.Background(), tc.args, strings.NewReader(""), io.Discard, &stderr); code != tc.code {
			t.Errorf("%q: exit %d, want %d; stderr %q", tc.args, code, tc.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: stderr %q, want %q", tc.args, stderr.String(), tc.stderr)
		}
	}
}

func TestPubConnectionRefused(t *testing.T) {
	// A port nothing listens on: the error is the dial's, without prefixes.
	dir := t.TempDir()
	f := filepath.Join(dir, "m")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := listenAndClose(t)
	var stderr bytes.Buffer
	code := runPub(context.Background(), []string{"-h", "127.0.0.1", "-p", ln, "-t", "a", "-f", f}, nil, io.Discard, &stderr)
	if code != exitFail || !strings.HasPrefix(stderr.String(), "tern pub: dial tcp 127.0.0.1:"+ln) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// tern pub -l publishes each stdin line as a message, in order, for every
// protocol version (in 5.0 the later ones under a topic alias).
func TestPubLines(t *testing.T) {
	b := mqtttest.StartBroker(t, broker.Options{})
	host, port, _ := net.SplitHostPort(b.Addr)
	for _, v := range []string{"31", "311", "5"} {
		t.Run(v, func(t *testing.T) {
			got := make(chan string, 10)
			sub, err := client.Connect(context.Background(), client.Options{Address: b.Addr, ClientID: "lines-" + v, CleanStart: true,
				OnMessage: func(p *packet.Publish) { got <- string(p.Payload) }})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if _, err := sub.Subscribe(context.Background(), packet.Subscription{Filter: "lines/" + v, QoS: 1}); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			code := runPub(context.Background(), []string{"-h", host, "-p", port, "-V", v, "-q", "1", "-t", "lines/" + v, "-l"},
				strings.NewReader("one\ntwo\n\nthree\nlast without newline"), io.Discard, &stderr)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			for _, want := range []string{"one", "two", "three", "last without newline"} {
				select {
				case g := <-got:
					if g != want {
						t.Fatalf("got %q, want %q", g, want)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("no %q", want)
				}
			}
		})
	}
}
