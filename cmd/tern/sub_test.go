package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

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
		verbose, eol bool
		want         string
	}{
		{false, true, "x y\n"},
		{true, true, "a/b x y\n"},
		{false, false, "x y"},
		{true, false, "a/b x y"},
	} {
		if got := string(formatMessage(nil, p, tc.verbose, tc.eol)); got != tc.want {
			t.Errorf("verbose=%v eol=%v: %q, want %q", tc.verbose, tc.eol, got, tc.want)
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
