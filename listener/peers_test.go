package listener_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// peerTimeout bounds every run of a third-party client.
const peerTimeout = 15 * time.Second

// lookPath finds a peer binary; the error says how to get it.
func lookPath(name, hint string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (%s): %w", name, hint, err)
	}
	return p, nil
}

// peer is a running third-party client.
type peer struct {
	cmd    *exec.Cmd
	out    strings.Builder
	done   chan struct{}
	err    error // Wait's result once done is closed
	cancel context.CancelFunc
}

// startPeer starts bin with args, killed after peerTimeout or when the
// test ends.
func startPeer(t *testing.T, bin string, args ...string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	p := &peer{cmd: exec.CommandContext(ctx, bin, args...), done: make(chan struct{}), cancel: cancel}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.WaitDelay = time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// wait waits for p to exit and returns its output and exit error.
func (p *peer) wait() (string, error) {
	<-p.done
	return p.out.String(), p.err
}

// runPeer runs bin to completion and fails the test unless it exits 0.
func runPeer(t *testing.T, bin string, args ...string) string {
	t.Helper()
	p := startPeer(t, bin, args...)
	out, err := p.wait()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(p.cmd.Args, " "), err, out)
	}
	return out
}

// mqttjsScript is the MQTT.js peer; its node_modules come from `npm ci`
// in its directory (make deps).
func mqttjsScript(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "mqttjs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "mqtt", "package.json")); err != nil {
		t.Fatalf("MQTT.js is not installed: run `npm ci` in %s (make deps does): %v", dir, errors.Unwrap(err))
	}
	return filepath.Join(dir, "script.js")
}
