package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/bench"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// runBenchJSON runs tern bench with --json against addr and decodes the
// summary.
func runBenchJSON(t *testing.T, addr string, args ...string) bench.Result {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	full := append([]string{"bench"}, args[0], "-h", host, "-p", port, "--json")
	full = append(full, args[1:]...)
	return runBenchArgs(t, full)
}

func runBenchArgs(t *testing.T, args []string) bench.Result {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, nil, &out, &errb); code != 0 {
		t.Fatalf("tern %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
	}
	if errb.Len() > 0 {
		t.Errorf("stderr not quiet when it is not a terminal: %q", errb.String())
	}
	var res bench.Result
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("--json output %q: %v", out.String(), err)
	}
	if dec.More() {
		t.Fatalf("--json printed more than one object: %q", out.String())
	}
	return res
}

func TestBenchTLS(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	cert, caFile := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go b.ServeConn(nc)
		}
	}()
	url := "tls://" + ln.Addr().String()
	for _, trust := range [][]string{{"--cafile", caFile}, {"--insecure"}} {
		t.Run(trust[0], func(t *testing.T) {
			args := append([]string{"bench", "fanout", "--url", url, "-c", "2", "-n", "50", "-q", "1", "--json"}, trust...)
			res := runBenchArgs(t, args)
			if res.Connections.OK != 3 || res.Acked != 50 || res.Received != 100 || res.Loss == nil || *res.Loss != 0 {
				t.Errorf("connections %+v acked %d received %d loss %v; want 3 ok, 50, 100, 0", res.Connections, res.Acked, res.Received, res.Loss)
			}
		})
	}
	// Without trust, every handshake fails and says why.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"bench", "conn", "--url", url, "-c", "2", "-d", "1ms"}, nil, &out, &errb); code != exitFail ||
		!strings.Contains(out.String(), "2 failed") || !strings.Contains(out.String(), "certificate") {
		t.Errorf("untrusted certificate: exit %d, output %q", code, out.String())
	}
}

// selfSigned makes a certificate for 127.0.0.1 and writes it, as its own
// CA, to a PEM file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tern bench test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

func TestBenchTextSummary(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	host, port, _ := net.SplitHostPort(b.Addr)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"bench", "fanin", "-h", host, "-p", port, "-c", "2", "-n", "10", "-q", "1"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"2 publishers -> 1 subscriber", "3 ok, 0 failed, 0 lost", "sent         20", "acked        20",
		"received     20", "expected     20; loss 0 (0.000%) at 0 of 1 receivers; duplicates 0", "latency      p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchFlags(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, exitUsage, "name a scenario"},
		{[]string{"flood"}, exitUsage, "unknown scenario"},
		{[]string{"pub", "-q", "3"}, exitUsage, "-q 3"},
		{[]string{"pub", "-s", "8"}, exitUsage, "at least 20 bytes"},
		{[]string{"pub", "-d", "1s", "-n", "5"}, exitUsage, "not both"},
		{[]string{"pub", "-w", "0"}, exitUsage, "-w 0"},
		{[]string{"p2p", "-t", "same/topic"}, exitUsage, "needs %i"},
		{[]string{"fanin", "-t", "a/x%i"}, exitUsage, "filter"},
		{[]string{"pub", "--url", "http://x"}, exitUsage, "want tcp://"},
		{[]string{"pub", "--insecure"}, exitUsage, "need a tls://"},
		{[]string{"sub", "--shared", "a/b"}, exitUsage, "--shared"},
		{[]string{"--help"}, exitOK, "tern bench conn|pub|sub"},
		{[]string{"pub", "--help"}, exitOK, "--connect-rate"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"bench"}, tc.args...), nil, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.want)
			}
		})
	}
}

// The flags land in bench.Config as they say.
func TestBenchFlagsToConfig(t *testing.T) {
	cases := []struct {
		args  []string
		check func(c bench.Config) bool
	}{
		{[]string{"pub"}, func(c bench.Config) bool {
			return strings.Join(c.URLs, " ") == "tcp://localhost:1883" && c.Clients == 10 && c.Size == 256 && c.Window == 64 &&
				c.Version == packet.V311 && c.KeepAlive == 60*time.Second && c.Drain == 2*time.Second && c.TLSConfig == nil
		}},
		{[]string{"pub", "-h", "::1", "-p", "1884"}, func(c bench.Config) bool { return c.URLs[0] == "tcp://[::1]:1884" }},
		{[]string{"fanout", "--url", "tcp://a:1", "-h", "ignored"}, func(c bench.Config) bool { return strings.Join(c.URLs, " ") == "tcp://a:1" }},
		{[]string{"fanout", "-c", "3", "-q", "2", "-s", "30", "-r", "5", "-n", "7", "-w", "9", "-t", "x/%i", "--shared", "g", "-V", "5",
			"-i", "id", "-u", "user", "-P", "pw", "--connect-rate", "50", "-k", "0", "--drain", "1s"}, func(c bench.Config) bool {
			return c.Clients == 3 && c.QoS == 2 && c.Size == 30 && c.Rate == 5 && c.Count == 7 && c.Window == 9 && c.Topic == "x/%i" &&
				c.Shared == "g" && c.Version == packet.V5 && c.IDPrefix == "id" && c.Username == "user" && c.UsernameSet &&
				c.Password == "pw" && c.PasswordSet && c.ConnectRate == 50 && c.KeepAlive == 0 && c.Drain == time.Second
		}},
		{[]string{"conn", "--url", "tls://a", "--insecure"}, func(c bench.Config) bool { return c.TLSConfig != nil && c.TLSConfig.InsecureSkipVerify }},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var errb bytes.Buffer
			cfg, err := parseBench(tc.args, &errb)
			if err != nil {
				t.Fatalf("%v %s", err, errb.String())
			}
			if !tc.check(cfg.Config) {
				t.Errorf("config %+v", cfg.Config)
			}
		})
	}
}

// tern bench --json prints the exact counts bench.Run makes.
func TestBenchJSON(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	res := runBenchJSON(t, b.Addr, "fanout", "-c", "3", "-n", "100", "-q", "1")
	if res.Connections.OK != 4 || res.Sent != 100 || res.Acked != 100 || res.Received != 300 || res.Loss == nil || *res.Loss != 0 ||
		res.Latency.Count != 300 || res.URL != "tcp://"+b.Addr {
		t.Errorf("connections %+v sent %d acked %d received %d loss %v latency samples %d url %q",
			res.Connections, res.Sent, res.Acked, res.Received, res.Loss, res.Latency.Count, res.URL)
	}
}

// tern bench --report writes the run's page, with its numbers.
func TestBenchReportFlag(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	file := filepath.Join(t.TempDir(), "run.html")
	res := runBenchJSON(t, b.Addr, "fanout", "-c", "2", "-n", "50", "-q", "1", "--report", file)
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", "<svg", "fanout: 1 publisher -&gt; 2 subscribers", "tcp://" + b.Addr,
		"p50 ", "100 (", "50 messages per publisher"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if res.Received != 100 {
		t.Errorf("received %d", res.Received)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"bench", "conn", "-h", "127.0.0.1", "-p", "1", "-c", "1", "-d", "1ms",
		"--report", filepath.Join(t.TempDir(), "no", "such", "dir.html")}, nil, &out, &errb); code != exitFail ||
		!strings.Contains(errb.String(), "--report") {
		t.Errorf("unwritable report: exit %d, stderr %q", code, errb.String())
	}
}
