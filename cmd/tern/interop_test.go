package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
)

// These tests check `tern pub` and `tern sub` against mosquitto_pub and
// mosquitto_sub through the Tern broker. They fail, never skip, when the
// mosquitto clients are missing: `make test` installs them.

func mosquitto(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install mosquitto-clients (make test does)", name)
	}
	return p
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// startSub runs `tern sub args` in the background and waits until the
// broker has its subscription.
func startSub(t *testing.T, b *mt.Broker, args ...string) (out *mt.SyncBuffer, wait func() int) {
	t.Helper()
	h, p := hostPort(t, b.Addr)
	out = &mt.SyncBuffer{}
	var errb mt.SyncBuffer
	before := b.Stats().Subscriptions
	done := make(chan int, 1)
	var exited atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	go func() {
		code := runSub(ctx, append([]string{"-h", h, "-p", p}, args...), out, &errb)
		exited.Store(true)
		done <- code
	}()
	// A retained message can satisfy -C before the poll sees the
	// subscription, so exiting counts as subscribed too.
	mt.Eventually(t, "tern sub subscribed", func() bool { return b.Stats().Subscriptions > before || exited.Load() })
	return out, func() int {
		defer cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Logf("tern sub stderr: %s", errb.String())
			}
			return code
		case <-time.After(10 * time.Second):
			t.Fatal("tern sub did not exit")
			return -1
		}
	}
}

func ternPub(t *testing.T, addr, stdin string, args ...string) (int, string) {
	t.Helper()
	h, p := hostPort(t, addr)
	var out, errb bytes.Buffer
	code := runPub(context.Background(), append([]string{"-h", h, "-p", p}, args...), strings.NewReader(stdin), &out, &errb)
	return code, errb.String()
}

func TestMosquittoPubToTernSub(t *testing.T) {
	pub := mosquitto(t, "mosquitto_pub")
	for _, v := range []string{"31", "311", "5"} {
		t.Run(v, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			h, p := hostPort(t, b.Addr)
			out, wait := startSub(t, b, "-V", v, "-t", "cli/#", "-q", "2", "-v", "-C", "3")
			for q := range 3 {
				cmd := exec.Command(pub, "-h", h, "-p", p, "-V", "mqttv"+v, "-t", fmt.Sprint("cli/q", q), "-q", fmt.Sprint(q), "-m", fmt.Sprint("hello ", q))
				if o, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("mosquitto_pub: %v: %s", err, o)
				}
				// QoS 0 has no acknowledgement: wait for delivery so the
				// order of the three is fixed.
				mt.Eventually(t, "delivery", func() bool { return strings.Count(out.String(), "\n") > q })
			}
			if code := wait(); code != 0 {
				t.Fatalf("tern sub exited %d", code)
			}
			want := "cli/q0 hello 0\ncli/q1 hello 1\ncli/q2 hello 2\n"
			if out.String() != want {
				t.Fatalf("tern sub printed %q, want %q", out.String(), want)
			}
		})
	}
}

func TestTernPubToMosquittoSub(t *testing.T) {
	sub := mosquitto(t, "mosquitto_sub")
	for _, v := range []string{"31", "311", "5"} {
		t.Run(v, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			h, p := hostPort(t, b.Addr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, sub, "-h", h, "-p", p, "-V", "mqttv"+v, "-t", "lines/+", "-q", "1", "-v", "-C", "3")
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			mt.Eventually(t, "mosquitto_sub subscribed", func() bool { return b.Stats().Subscriptions == 1 })
			// -l: each line of stdin is a message.
			if code, errs := ternPub(t, b.Addr, "one\ntwo\nthree\n", "-V", v, "-t", "lines/x", "-q", "1", "-l"); code != 0 {
				t.Fatalf("tern pub exited %d: %s", code, errs)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v (output %q)", err, out.String())
			}
			if want := "lines/x one\nlines/x two\nlines/x three\n"; out.String() != want {
				t.Fatalf("mosquitto_sub printed %q, want %q", out.String(), want)
			}
		})
	}
}

func TestTernPubRetainedTernSub(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	if code, errs := ternPub(t, b.Addr, "", "-t", "state", "-m", "on", "-r", "-q", "1"); code != 0 {
		t.Fatalf("tern pub: %d %s", code, errs)
	}
	out, wait := startSub(t, b, "-t", "state", "-C", "1")
	if code := wait(); code != 0 || out.String() != "on\n" {
		t.Fatalf("tern sub: code %d, printed %q", code, out.String())
	}
	// -R skips stale retained messages: only the live one is printed.
	mt.Eventually(t, "first sub gone", func() bool { return b.Stats().Subscriptions == 0 })
	out, wait = startSub(t, b, "-t", "state", "-C", "1", "-R")
	if code, errs := ternPub(t, b.Addr, "", "-t", "state", "-m", "off"); code != 0 {
		t.Fatalf("tern pub: %d %s", code, errs)
	}
	if code := wait(); code != 0 || out.String() != "off\n" {
		t.Fatalf("tern sub -R: code %d, printed %q", code, out.String())
	}
}

func TestTernPubRefused(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"u": "p"})})
	code, errs := ternPub(t, b.Addr, "", "-t", "x", "-m", "y", "-u", "u", "-P", "wrong")
	if code == 0 || !strings.Contains(strings.ToLower(errs), "bad user") {
		t.Fatalf("code %d, stderr %q: want a refusal naming bad credentials", code, errs)
	}
	if code, errs := ternPub(t, b.Addr, "", "-t", "x", "-m", "y", "-u", "u", "-P", "p"); code != 0 {
		t.Fatalf("good credentials: code %d, stderr %q", code, errs)
	}
}
