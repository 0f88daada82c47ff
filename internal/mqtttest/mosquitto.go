package mqtttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is Debian's mosquitto broker, a server we did not write, run
// on a free loopback port for interop tests. Tests fail, never skip, when
// it is missing: `make test` installs it.
type Mosquitto struct {
	Addr string

	t    testing.TB
	bin  string
	conf string
	cmd  *exec.Cmd
}

// StartMosquitto runs mosquitto with anonymous access. With persistent
// set it saves its state in a temporary directory on SIGTERM, so Restart
// keeps sessions and queued messages.
func StartMosquitto(t testing.TB, persistent bool) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Fatal("mosquitto not found: install the mosquitto package (make test does)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)

	dir := t.TempDir()
	// No queue bound: Mosquitto's default drops what passes 1000 queued
	// QoS 1/2 messages per client, which a test that floods a subscriber
	// (a bridge draining its backlog after a restart) would take for loss.
	text := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n", port)
	if persistent {
		// Run as ourselves: mosquitto started as root switches to the
		// mosquitto user, who cannot write to our temporary directory.
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		text += fmt.Sprintf("persistence true\npersistence_location %s/\nuser %s\n", dir, me.Username)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{Addr: addr, t: t, bin: bin, conf: conf}
	m.start()
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	})
	return m
}

func (m *Mosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", m.Addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not listen on %s: %v", m.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops mosquitto with SIGTERM, which saves a persistent one's
// state, and starts it again on the same port.
func (m *Mosquitto) Restart() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	m.cmd.Wait()
	m.start()
}

// Pause stops mosquitto with SIGSTOP: its connections stay open and it
// answers nothing, as a remote that hangs. Resume lets it go on.
func (m *Mosquitto) Pause() { m.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused mosquitto.
func (m *Mosquitto) Resume() { m.cmd.Process.Signal(syscall.SIGCONT) }
