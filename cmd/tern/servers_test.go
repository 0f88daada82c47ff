package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// listen serves b on another loopback listener, standing in for another
// node of a cluster, and counts the connections it takes.
func listen(t *testing.T, b *mt.Broker) (string, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	go func() { _ = b.Serve(cl) }()
	return "tcp://" + ln.Addr().String(), cl
}

// tern bench --url twice spreads the connections over both brokers;
// --sub-url puts the subscribers on the second.
func TestBenchSeveralURLs(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	cases := []struct {
		name       string
		args       func(a, b string) []string
		na, nb     int64 // connections each listener takes
		received   uint64
		servers    int
		wantInText string
	}{
		{"--url twice: conn", func(a, b string) []string { return []string{"conn", "--url", a, "--url", b, "-c", "7", "-d", "1ms"} },
			4, 3, 0, 2, ""},
		{"--url twice: p2p, pair i on broker i mod 2", func(a, b string) []string {
			return []string{"p2p", "--url", a, "--url", b, "-c", "4", "-n", "30", "-q", "1"}
		}, 4, 4, 4 * 30, 2, ""},
		{"--sub-url: fanout, subscribers on the second", func(a, b string) []string {
			return []string{"fanout", "--url", a, "--sub-url", b, "-c", "5", "-n", "40", "-q", "1"}
		}, 1, 5, 5 * 40, 2, "publishers on A; subscribers on B"},
		{"--sub-url with -h/-p for the publishers", func(a, b string) []string {
			host, port, _ := net.SplitHostPort(strings.TrimPrefix(a, "tcp://"))
			return []string{"fanin", "-h", host, "-p", port, "--sub-url", b, "-c", "3", "-n", "20"}
		}, 3, 1, 3 * 20, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ua, la := listen(t, b)
			ub, lb := listen(t, b)
			args := append([]string{"bench"}, tc.args(ua, ub)...)
			res := runBenchArgs(t, append(args, "--json"))
			if la.n.Load() != tc.na || lb.n.Load() != tc.nb {
				t.Errorf("connections %d and %d, want %d and %d", la.n.Load(), lb.n.Load(), tc.na, tc.nb)
			}
			if res.Connections.OK != int(tc.na+tc.nb) || res.Received != tc.received || (res.Loss != nil && *res.Loss != 0) ||
				len(res.Servers) != tc.servers {
				t.Errorf("connections %+v received %d loss %v servers %+v; want %d ok, %d, 0 and %d servers",
					res.Connections, res.Received, res.Loss, res.Servers, tc.na+tc.nb, tc.received, tc.servers)
			}
			if tc.wantInText != "" {
				var out, errb bytes.Buffer
				code := run(context.Background(), args, nil, &out, &errb)
				want := strings.NewReplacer("A", ua, "B", ub).Replace(tc.wantInText)
				if code != exitOK || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "servers      ") {
					t.Errorf("exit %d; summary lacks %q:\n%s%s", code, want, out.String(), errb.String())
				}
			}
		})
	}
}

// tern pub, tern sub and tern sub -c take --url several times: the first
// is dead, so they use the second.
func TestClientsSeveralURLs(t *testing.T) {
	dead := "tcp://127.0.0.1:" + listenAndClose(t)
	cases := []struct {
		name string
		cmd  string
		args []string
	}{
		{"sub", "sub", []string{"-t", "t/#", "-q", "1", "-C", "1"}},
		{"sub -c", "sub", []string{"-t", "t/#", "-q", "1", "-C", "1", "-c", "-i", "failover-sub"}},
		{"sub -c v5", "sub", []string{"-t", "t/#", "-q", "1", "-C", "1", "-c", "-i", "failover-sub5", "-V", "5"}},
		{"pub", "pub", []string{"-t", "t/x", "-q", "1", "-m", "hello"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			alive := "tcp://" + b.Addr
			args := append([]string{tc.cmd, "--url", dead, "--url", alive}, tc.args...)
			lines := make(chan string, 10)
			var errb mt.SyncBuffer
			done := make(chan int, 1)
			var watcher *mt.Raw
			if tc.cmd == "pub" {
				watcher = mt.Dial(t, b.Addr, packet.V311)
				watcher.Connect("watcher", true)
				watcher.Subscribe(1, 0, "t/#")
			}
			go func() { done <- run(context.Background(), args, nil, &lineWriter{lines: lines}, &errb) }()
			if tc.cmd == "sub" {
				mt.Eventually(t, "the subscription on the second server", func() bool { return b.Stats().Subscriptions == 1 })
				pub := mt.Dial(t, b.Addr, packet.V311)
				pub.Connect("pub", true)
				pub.Send(&packet.Publish{Topic: "t/x", Payload: []byte("hello")})
				if l := nextLine(t, lines); l != "hello" {
					t.Errorf("printed %q", l)
				}
			} else if p := mt.Expect[*packet.Publish](watcher); string(p.Payload) != "hello" {
				t.Errorf("published %q", p.Payload)
			}
			select {
			case code := <-done:
				if code != exitOK {
					t.Errorf("exit %d, stderr %q", code, errb.String())
				}
			case <-time.After(mt.Timeout):
				t.Fatal("did not exit")
			}
			if tc.name == "sub -c" && !strings.Contains(errb.String(), dead+": dial tcp") {
				t.Errorf("stderr %q does not say that the first server failed", errb.String())
			}
		})
	}
}

// tern sub -c with several URLs moves to the next server when the one it
// is connected to fails, subscribes again there and goes on printing.
func TestSubPersistentMovesToNextServer(t *testing.T) {
	first := mt.StartBroker(t, broker.Options{})
	second := mt.StartBroker(t, broker.Options{})
	lines := make(chan string, 10)
	var errb mt.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sub", "-c", "-i", "mover", "-q", "1", "-t", "t", "-k", "5",
			"--url", "tcp://" + first.Addr, "--url", "tcp://" + second.Addr}, nil, &lineWriter{lines: lines}, &errb)
	}()
	publish := func(b *mt.Broker, msg string) {
		p := mt.Dial(t, b.Addr, packet.V311)
		p.Connect("pub-"+msg, true)
		p.Send(&packet.Publish{Topic: "t", Payload: []byte(msg)})
	}
	mt.Eventually(t, "the subscription on the first server", func() bool { return first.Stats().Subscriptions == 1 })
	publish(first, "one")
	if l := nextLine(t, lines); l != "one" {
		t.Fatalf("printed %q", l)
	}
	first.Close()
	mt.Eventually(t, "the subscription on the second server", func() bool { return second.Stats().Subscriptions == 1 })
	publish(second, "two")
	if l := nextLine(t, lines); l != "two" {
		t.Fatalf("printed %q", l)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(mt.Timeout):
		t.Fatal("did not exit")
	}
	if !strings.Contains(errb.String(), "connection lost") {
		t.Errorf("stderr %q", errb.String())
	}
}

// With every URL dead, tern sub -c gives up after trying each once, and
// says why for each; with one URL it gives up at once, as before.
func TestSubPersistentAllServersDead(t *testing.T) {
	dead1, dead2 := "tcp://127.0.0.1:"+listenAndClose(t), "tcp://127.0.0.1:"+listenAndClose(t)
	for _, urls := range [][]string{{dead1}, {dead1, dead2}} {
		t.Run(strings.Join(urls, " "), func(t *testing.T) {
			args := []string{"sub", "-c", "-i", "x", "-t", "t"}
			for _, u := range urls {
				args = append(args, "--url", u)
			}
			var errb bytes.Buffer
			start := time.Now()
			code := run(context.Background(), args, nil, io.Discard, &errb)
			if code != exitFail || time.Since(start) > 10*time.Second {
				t.Errorf("exit %d after %v, want %d at once", code, time.Since(start), exitFail)
			}
			for _, u := range urls {
				if len(urls) > 1 && !strings.Contains(errb.String(), u+": dial tcp") {
					t.Errorf("stderr %q does not name %s", errb.String(), u)
				}
			}
		})
	}
}
