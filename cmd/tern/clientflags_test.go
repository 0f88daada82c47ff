package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// checkOptions compares the connection options the flags produced with
// want. ClientID is compared by prefix, since a generated one is random.
func checkOptions(t *testing.T, got, want client.Options) {
	t.Helper()
	if !strings.HasPrefix(got.ClientID, want.ClientID) || (want.ClientID == "" && got.ClientID != "") {
		t.Errorf("ClientID %q, want %q", got.ClientID, want.ClientID)
	}
	if got.Address != want.Address || got.URL != want.URL || got.Version != want.Version || got.CleanStart != want.CleanStart ||
		got.KeepAlive != want.KeepAlive {
		t.Errorf("options %q %q v%d clean=%v ka=%v, want %q %q v%d clean=%v ka=%v",
			got.Address, got.URL, got.Version, got.CleanStart, got.KeepAlive,
			want.Address, want.URL, want.Version, want.CleanStart, want.KeepAlive)
	}
	if (got.TLSConfig == nil) != (want.TLSConfig == nil) ||
		(got.TLSConfig != nil && got.TLSConfig.InsecureSkipVerify != want.TLSConfig.InsecureSkipVerify) {
		t.Errorf("TLS config %+v, want %+v", got.TLSConfig, want.TLSConfig)
	}
	if got.UsernameSet != want.UsernameSet || got.Username != want.Username ||
		got.PasswordSet != want.PasswordSet || string(got.Password) != string(want.Password) {
		t.Errorf("credentials %v %q %v %q, want %v %q %v %q", got.UsernameSet, got.Username, got.PasswordSet, got.Password,
			want.UsernameSet, want.Username, want.PasswordSet, want.Password)
	}
	switch {
	case (got.Will == nil) != (want.Will == nil):
		t.Errorf("will %+v, want %+v", got.Will, want.Will)
	case got.Will != nil:
		g, w := got.Will, want.Will
		if g.Topic != w.Topic || string(g.Payload) != string(w.Payload) || g.QoS != w.QoS || g.Retain != w.Retain {
			t.Errorf("will %+v, want %+v", g, w)
		}
	}
}

// defaultOptions are the options of a command line with no connection flags.
var defaultOptions = client.Options{
	Address:    "localhost:1883",
	Version:    packet.V311,
	ClientID:   "tern-",
	CleanStart: true,
	KeepAlive:  60 * time.Second,
}

func optionsWith(f func(o *client.Options)) client.Options {
	o := defaultOptions
	f(&o)
	return o
}

func TestClientFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want client.Options
	}{
		{"defaultOptions", nil, defaultOptions},
		{"short names", []string{"-h", "example.org", "-p", "8883", "-i", "me", "-u", "bob", "-P", "pw", "-k", "30", "-c"},
			optionsWith(func(o *client.Options) {
				o.Address, o.ClientID, o.CleanStart, o.KeepAlive = "example.org:8883", "me", false, 30*time.Second
				o.Username, o.UsernameSet, o.Password, o.PasswordSet = "bob", true, []byte("pw"), true
			})},
		{"long names", []string{"--host", "::1", "--port", "1884", "--id", "me", "--username", "", "--pw", "", "--keepalive", "0", "--disable-clean-session"},
			optionsWith(func(o *client.Options) {
				o.Address, o.ClientID, o.CleanStart, o.KeepAlive = "[::1]:1884", "me", false, -1
				o.UsernameSet, o.PasswordSet = true, true
			})},
		{"single dash long name", []string{"-host", "h", "-id=x"}, optionsWith(func(o *client.Options) { o.Address, o.ClientID = "h:1883", "x" })},
		{"double dash short name", []string{"--p", "1", "--i", "x"}, optionsWith(func(o *client.Options) { o.Address, o.ClientID = "localhost:1", "x" })},
		{"version 31", []string{"-V", "31"}, optionsWith(func(o *client.Options) { o.Version = packet.V31 })},
		{"version mqttv31", []string{"-V", "mqttv31"}, optionsWith(func(o *client.Options) { o.Version = packet.V31 })},
		{"version 311", []string{"--protocol-version", "311"}, defaultOptions},
		{"version mqttv311", []string{"-V", "mqttv311"}, defaultOptions},
		{"version 5 has no generated id", []string{"-V", "5"}, optionsWith(func(o *client.Options) { o.Version, o.ClientID = packet.V5, "" })},
		{"version mqttv5", []string{"-V", "MQTTv5", "-i", "x"}, optionsWith(func(o *client.Options) { o.Version, o.ClientID = packet.V5, "x" })},
		{"v5 password alone", []string{"-V", "5", "-P", "pw"}, optionsWith(func(o *client.Options) {
			o.Version, o.ClientID, o.Password, o.PasswordSet = packet.V5, "", []byte("pw"), true
		})},
		{"will", []string{"--will-topic", "w/t", "--will-payload", "bye", "--will-qos", "2", "--will-retain"},
			optionsWith(func(o *client.Options) {
				o.Will = &packet.Will{Topic: "w/t", Payload: []byte("bye"), QoS: 2, Retain: true}
			})},
		{"will topic alone", []string{"--will-topic", "w"}, optionsWith(func(o *client.Options) { o.Will = &packet.Will{Topic: "w"} })},
		{"url", []string{"--url", "ws://h/mqtt", "-h", "ignored"}, optionsWith(func(o *client.Options) { o.Address, o.URL = "", "ws://h/mqtt" })},
		{"several urls: the first first", []string{"--url", "tcp://a:1", "--url", "tcp://b:2"},
			optionsWith(func(o *client.Options) { o.Address, o.URL = "", "tcp://a:1" })},
		{"tls url", []string{"--url", "tls://h", "--insecure"}, optionsWith(func(o *client.Options) {
			o.Address, o.URL, o.TLSConfig = "", "tls://h", &tls.Config{InsecureSkipVerify: true}
		})},
		{"tls url among others", []string{"--url", "tcp://a", "--url", "wss://h/mqtt"}, optionsWith(func(o *client.Options) {
			o.Address, o.URL, o.TLSConfig = "", "tcp://a", &tls.Config{}
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range []string{"pub", "sub"} {
				var o client.Options
				var err error
				if cmd == "pub" {
					_, o, err = parsePub(append([]string{"-t", "a", "-n"}, tc.args...), io.Discard)
				} else {
					_, o, err = parseSub(append([]string{"-t", "a"}, tc.args...), io.Discard)
				}
				if err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				checkOptions(t, o, tc.want)
			}
		})
	}
}

func TestClientFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string // in the message; "" for the flag package's own errors
	}{
		{[]string{"-p", "0"}, "port 0"},
		{[]string{"-p", "70000"}, "port 70000"},
		{[]string{"-p", "x"}, ""},
		{[]string{"-q", "3"}, "QoS 3"},
		{[]string{"-q", "-1"}, "QoS -1"},
		{[]string{"-k", "-1"}, "keep alive -1"},
		{[]string{"-k", "65536"}, "keep alive 65536"},
		{[]string{"-V", "4"}, "protocol version"},
		{[]string{"-V", "mqttv50"}, "protocol version"},
		{[]string{"-c"}, "-c needs a client id"},
		{[]string{"-P", "pw"}, "-P needs -u"},
		{[]string{"-V", "31", "-P", "pw"}, "-P needs -u"},
		{[]string{"--will-payload", "x"}, "need --will-topic"},
		{[]string{"--will-retain"}, "need --will-topic"},
		{[]string{"--will-topic", "w", "--will-qos", "3"}, "will QoS 3"},
		{[]string{"--no-such-flag"}, ""},
		{[]string{"-h"}, ""},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--url", "http://h"}, "want tcp://"},
		{[]string{"--url", "tcp://a", "--url", "tcp://"}, "with a host"},
		{[]string{"--insecure"}, "need a tls://"},
		{[]string{"--url", "tcp://a", "--cafile", "ca.pem"}, "need a tls://"},
		{[]string{"--url", "tls://a", "--cafile", "/nonexistent/ca.pem"}, "--cafile"},
		{[]string{"--url", "tls://a", "--cert", "c.pem"}, "--cert and --key go together"},
	}
	for _, tc := range cases {
		for _, cmd := range []string{"pub", "sub"} {
			var stderr bytes.Buffer
			var err error
			if cmd == "pub" {
				_, _, err = parsePub(append([]string{"-t", "a", "-n"}, tc.args...), &stderr)
			} else {
				_, _, err = parseSub(append([]string{"-t", "a"}, tc.args...), &stderr)
			}
			if err == nil {
				t.Errorf("%s %q: no error", cmd, tc.args)
				continue
			}
			var ue usageError
			if tc.want == "" {
				// The flag package's error, already printed with the usage.
				if errors.As(err, &ue) || !strings.Contains(stderr.String(), "Usage: tern "+cmd) {
					t.Errorf("%s %q: err %v, stderr %q", cmd, tc.args, err, stderr.String())
				}
				continue
			}
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %q: err %v, want a usage error containing %q", cmd, tc.args, err, tc.want)
			}
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]byte{
		"31": packet.V31, "mqttv31": packet.V31, "311": packet.V311, "mqttv311": packet.V311,
		"5": packet.V5, "mqttv5": packet.V5, "MQTTV5": packet.V5,
	} {
		if got, err := parseVersion(in); err != nil || got != want {
			t.Errorf("parseVersion(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "3", "4", "3.1.1", "v5", "50"} {
		if _, err := parseVersion(in); err == nil {
			t.Errorf("parseVersion(%q) accepted", in)
		}
	}
}

func TestUsageListsBothNames(t *testing.T) {
	var stderr bytes.Buffer
	if code := runPub(context.Background(), []string{"--help"}, nil, io.Discard, &stderr); code != exitOK {
		t.Errorf("--help exit %d", code)
	}
	for _, want := range []string{"-t, --topic topic", "-h, --host host", "(default localhost)", "--will-retain", "--repeat N"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, stderr.String())
		}
	}
	stderr.Reset()
	if code := runSub(t.Context(), []string{"-help"}, io.Discard, &stderr); code != exitOK {
		t.Errorf("-help exit %d", code)
	}
	if !strings.Contains(stderr.String(), "-C, --count N") {
		t.Errorf("sub usage:\n%s", stderr.String())
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		p    packet.Packet
		want string
	}{
		{&packet.Publish{Topic: "a/b", QoS: 1, PacketID: 3, Retain: true, Payload: []byte("hi")}, "PUBLISH (d0, q1, r1, m3, 'a/b', ... (2 bytes))"},
		{&packet.Connack{ReasonCode: 5}, "CONNACK (5)"},
		{&packet.Suback{PacketID: 1, ReasonCodes: []packet.ReasonCode{1, 0x80}}, "SUBACK (m1, 1, 128)"},
		{&packet.Pingreq{}, "PINGREQ"},
		{&packet.Disconnect{}, "DISCONNECT"},
	} {
		if got := describe(tc.p); got != tc.want {
			t.Errorf("describe = %q, want %q", got, tc.want)
		}
	}
}

func TestErrText(t *testing.T) {
	err := errors.New("client: publish: client: server answered PUBACK: not authorized")
	if got := errText(err); got != "publish: server answered PUBACK: not authorized" {
		t.Errorf("errText = %q", got)
	}
}
