package listener_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/ternmq/tern/listener"
)

func TestUnixStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tern.sock")
	// A process that died leaves its socket file behind.
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l := open(t, listener.Config{Type: "unix", Address: path})
	ch := acceptLoop(t, l)
	c, err := dialUnix(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, next(t, ch))

	// A live listener's socket is not taken over.
	if l2, err := listener.Listen(listener.Config{Type: "unix", Address: path}); err == nil {
		l2.Close()
		t.Fatal("second listener took over a live socket")
	} else {
		contains(t, err, "another process is listening")
	}
	next(t, ch) // the probe that found it alive, already closed
	c2, err := dialUnix(t, path)
	if err != nil {
		t.Fatalf("first listener lost its socket: %v", err)
	}
	defer c2.Close()
	roundTrip(t, c2, next(t, ch))
}

func TestUnixKeepsOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := listener.Listen(listener.Config{Type: "unix", Address: path}); err == nil {
		l.Close()
		t.Fatal("listened over a regular file")
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "precious" {
		t.Fatalf("file changed: %q, %v", data, err)
	}
}
