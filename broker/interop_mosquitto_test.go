package broker_test

// Interoperability with the Eclipse Mosquitto command-line clients
// (Debian package mosquitto-clients) for MQTT 3.1, 3.1.1 and 5.0. The
// binaries are required: a missing one fails the test rather than skipping
// it, so that CI cannot pass without running these checks.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
)

// mosqTimeout bounds every mosquitto_pub / mosquitto_sub run.
const mosqTimeout = 10 * time.Second

// mosqVersions are the protocol versions as mosquitto's -V flag names them.
var mosqVersions = []struct {
	name, flag string
}{
	{"3.1.1", "mqttv311"},
	{"3.1", "mqttv31"},
	{"5.0", "mqttv5"},
}

// mosq runs the mosquitto clients against one broker with one protocol
// version.
type mosq struct {
	t         *testing.T
	pub, sub  string // binary paths
	host, ver []string
}

// newMosq finds the binaries, failing the test when one is missing.
func newMosq(t *testing.T, b *mt.Broker, version string) *mosq {
	t.Helper()
	m := &mosq{t: t}
	for _, bin := range []struct {
		name string
		path *string
	}{{"mosquitto_pub", &m.pub}, {"mosquitto_sub", &m.sub}} {
		p, err := exec.LookPath(bin.name)
		if err != nil {
			t.Fatalf("%s not found: install mosquitto-clients (%v)", bin.name, err)
		}
		*bin.path = p
	}
	host, port, err := net.SplitHostPort(b.Addr)
	if err != nil {
		t.Fatalf("broker address %q: %v", b.Addr, err)
	}
	m.host = []string{"-h", host, "-p", port}
	m.ver = []string{"-V", version}
	return m
}

// mosqProc is a running mosquitto client.
type mosqProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error // Wait's result, valid once done is closed
}

// start starts bin with the broker address, the protocol version and
// args; it is killed after mosqTimeout or when the test ends.
func (m *mosq) start(bin string, args ...string) *mosqProc {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mosqTimeout)
	full := append(append(append([]string{}, m.host...), m.ver...), args...)
	p := &mosqProc{cmd: exec.CommandContext(ctx, bin, full...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		m.t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	m.t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits for p to exit and returns its output and exit error.
func (p *mosqProc) wait() (stdout, stderr string, err error) {
	<-p.done // bounded: the command's context ends after mosqTimeout
	return p.stdout.String(), p.stderr.String(), p.err
}

// mustExit waits for p and fails the test unless it exited with status 0.
func (m *mosq) mustExit(p *mosqProc) string {
	m.t.Helper()
	out, errOut, err := p.wait()
	if err != nil {
		m.t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", strings.Join(p.cmd.Args, " "), err, out, errOut)
	}
	return out
}

// publish runs mosquitto_pub with args to completion.
func (m *mosq) publish(args ...string) {
	m.t.Helper()
	m.mustExit(m.start(m.pub, args...))
}

// mosqWaitSubs waits until the broker holds n subscriptions.
func mosqWaitSubs(t *testing.T, b *mt.Broker, n int64) {
	t.Helper()
	mt.Eventually(t, fmt.Sprintf("%d subscriptions", n), func() bool { return b.Stats().Subscriptions == n })
}

// mosqLines splits output into lines.
func mosqLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func mosqCheckLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	if got := mosqLines(out); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("%s printed %q, want %q", what, got, want)
	}
}

// Checks [MQTT-7.0.0-2] [MQTT-7.1.1-1].
func TestMosquittoPubSub(t *testing.T) {
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			m := newMosq(t, b, v.flag)
			verbose := m.start(m.sub, "-t", "mq/#", "-q", "2", "-C", "3", "-v")
			// A second subscriber prints the QoS each message arrived with.
			qos := m.start(m.sub, "-t", "mq/#", "-q", "2", "-C", "3", "-F", "%q %t %p")
			mosqWaitSubs(t, b, 2)
			for q := range 3 {
				m.publish("-t", fmt.Sprintf("mq/%d", q), "-q", fmt.Sprint(q), "-m", fmt.Sprintf("payload at qos %d", q))
				// mosquitto_pub -q 0 may exit before the broker has read its
				// PUBLISH; wait for it to reach both subscribers so that the
				// next publisher's message cannot overtake it.
				mt.Eventually(t, "delivery", func() bool { return b.Stats().MessagesOut == int64(2*(q+1)) })
			}
			mosqCheckLines(t, "mosquitto_sub -v", m.mustExit(verbose),
				"mq/0 payload at qos 0", "mq/1 payload at qos 1", "mq/2 payload at qos 2")
			mosqCheckLines(t, "mosquitto_sub -F", m.mustExit(qos),
				"0 mq/0 payload at qos 0", "1 mq/1 payload at qos 1", "2 mq/2 payload at qos 2")
		})
	}
}

// Checks [MQTT-3.3.1-6].
func TestMosquittoRetained(t *testing.T) {
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			m := newMosq(t, b, v.flag)
			m.publish("-t", "ret/a", "-q", "1", "-r", "-m", "kept")
			mt.Eventually(t, "1 retained", func() bool { return b.Stats().Retained == 1 })
			// %r prints the RETAIN flag of the delivered message.
			mosqCheckLines(t, "subscriber after retain", m.mustExit(m.start(m.sub, "-t", "ret/#", "-C", "1", "-F", "%r %t %p")),
				"1 ret/a kept")
			mosqCheckLines(t, "subscriber -v", m.mustExit(m.start(m.sub, "-t", "ret/a", "-C", "1", "-v")),
				"ret/a kept")

			// -r -n: a retained message with an empty payload clears it.
			m.publish("-t", "ret/a", "-r", "-n")
			mt.Eventually(t, "retained cleared", func() bool { return b.Stats().Retained == 0 })
			// A new subscriber gets no retained message: the first thing it
			// prints is a live message published after it subscribed.
			sub := m.start(m.sub, "-t", "ret/#", "-C", "1", "-F", "%r %t %p")
			mosqWaitSubs(t, b, 1)
			m.publish("-t", "ret/a", "-m", "live")
			mosqCheckLines(t, "subscriber after clear", m.mustExit(sub), "0 ret/a live")
		})
	}
}

func TestMosquittoWildcards(t *testing.T) {
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			m := newMosq(t, b, v.flag)
			plus := m.start(m.sub, "-t", "wc/+/c", "-t", "wc/x/#", "-C", "3", "-v")
			all := m.start(m.sub, "-t", "#", "-C", "4", "-v")
			sys := m.start(m.sub, "-t", "$SYS/#", "-C", "1", "-v")
			mosqWaitSubs(t, b, 4)
			for _, tp := range []string{"wc/b/c", "wc/b/d", "$SYS/wc", "wc/x", "wc/x/y/z"} {
				m.publish("-t", tp, "-q", "1", "-m", "m")
			}
			mosqCheckLines(t, "wc/+/c and wc/x/#", m.mustExit(plus), "wc/b/c m", "wc/x m", "wc/x/y/z m")
			// [MQTT-4.7.2-1] '#' does not match topics starting with '$'.
			mosqCheckLines(t, "#", m.mustExit(all), "wc/b/c m", "wc/b/d m", "wc/x m", "wc/x/y/z m")
			mosqCheckLines(t, "$SYS/#", m.mustExit(sys), "$SYS/wc m")
		})
	}
}

func TestMosquittoPersistentSession(t *testing.T) {
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			m := newMosq(t, b, v.flag)
			id := "persist-" + v.flag
			// -c: clean session 0 (v5: session never expires); -E: exit once
			// subscribed (deterministic, where -C 1 -W 1 would wait out a
			// second).
			m.mustExit(m.start(m.sub, "-c", "-i", id, "-q", "1", "-t", "ps/#", "-E"))
			mt.Eventually(t, "subscriber offline", func() bool { return b.Stats().Connections == 0 })
			if s := b.Stats(); s.Sessions != 1 || s.Subscriptions != 1 {
				t.Fatalf("after the subscriber left: %d sessions, %d subscriptions, want 1 and 1", s.Sessions, s.Subscriptions)
			}
			for i := range 3 {
				m.publish("-t", fmt.Sprintf("ps/%d", i), "-q", "1", "-m", fmt.Sprintf("offline %d", i))
			}
			// -W bounds the run should a message be missing.
			out := m.mustExit(m.start(m.sub, "-c", "-i", id, "-q", "1", "-t", "ps/#", "-C", "3", "-W", "5", "-v"))
			mosqCheckLines(t, "resumed subscriber", out, "ps/0 offline 0", "ps/1 offline 1", "ps/2 offline 2")
			// No third run to check that nothing is owed any more: the
			// broker resends the queue before it answers the resubscription,
			// so mosquitto_sub -C 3 can exit with the SUBACK unread; its
			// socket then closes with a reset, which can discard its last
			// PUBACKs before the broker reads them, and the broker rightly
			// redelivers (with DUP). TestPahoResumeWithDup covers it.
		})
	}
}

func TestMosquittoWill(t *testing.T) {
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			m := newMosq(t, b, v.flag)
			watcher := m.start(m.sub, "-t", "will/#", "-q", "1", "-C", "1", "-F", "%q %t %p")
			mosqWaitSubs(t, b, 1)
			doomed := m.start(m.sub, "-i", "doomed", "-t", "unrelated",
				"--will-topic", "will/doomed", "--will-payload", "died", "--will-qos", "1")
			mosqWaitSubs(t, b, 2)
			if err := doomed.cmd.Process.Kill(); err != nil { // SIGKILL: no DISCONNECT
				t.Fatalf("kill: %v", err)
			}
			// [MQTT-3.1.2-8] the will is published when the connection is lost.
			mosqCheckLines(t, "watcher", m.mustExit(watcher), "1 will/doomed died")
			if _, _, err := doomed.wait(); err == nil {
				t.Fatal("killed mosquitto_sub exited with status 0")
			}
		})
	}
}

func TestMosquittoAuth(t *testing.T) {
	for _, v := range mosqVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"u": "p"})})
			m := newMosq(t, b, v.flag)
			refused := []struct {
				name       string
				args       []string
				code, v5   int    // exit status: the CONNACK code
				wantStderr string // lower case
			}{
				{"wrong password", []string{"-u", "x", "-P", "wrong"}, 4, 0x86, "bad user name or password"},
				{"unknown user", []string{"-u", "nobody", "-P", "p"}, 4, 0x86, "bad user name or password"},
				{"anonymous", nil, 5, 0x87, "not authori"},
			}
			for _, tc := range refused {
				args := append(append([]string{}, tc.args...), "-t", "a", "-m", "m")
				out, errOut, err := m.start(m.pub, args...).wait()
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatalf("%s: mosquitto_pub exited with %v, want a non-zero status\nstdout: %s\nstderr: %s", tc.name, err, out, errOut)
				}
				// mosquitto_pub exits with the CONNACK code it was refused with.
				want := tc.code
				if v.flag == "mqttv5" {
					want = tc.v5
				}
				if exit.ExitCode() != want {
					t.Errorf("%s: exit status %d, want %d (stderr %q)", tc.name, exit.ExitCode(), want, errOut)
				}
				if low := strings.ToLower(errOut); !strings.Contains(low, "connection error") || !strings.Contains(low, tc.wantStderr) {
					t.Errorf("%s: stderr %q does not report the refusal (%q)", tc.name, errOut, tc.wantStderr)
				}
			}
			if n := b.Stats().ConnectionsTotal; n != 0 {
				t.Fatalf("%d connections accepted, want 0", n)
			}

			sub := m.start(m.sub, "-u", "u", "-P", "p", "-t", "a", "-C", "1", "-v")
			mosqWaitSubs(t, b, 1)
			m.publish("-u", "u", "-P", "p", "-t", "a", "-m", "allowed")
			mosqCheckLines(t, "authenticated subscriber", m.mustExit(sub), "a allowed")
		})
	}
}
