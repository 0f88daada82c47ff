package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// listenUnix listens on the socket path. A socket file left behind by a
// process that died is removed first; one that a live process still
// listens on is not, since taking it over would cut that process off.
func listenUnix(path string) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		return l, err
	}
	fi, statErr := os.Lstat(path)
	if statErr != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, err // not a socket: never delete someone's file
	}
	c, dialErr := net.DialTimeout("unix", path, time.Second)
	if dialErr == nil {
		c.Close()
		return nil, fmt.Errorf("%w: another process is listening on %s", err, path)
	}
	if !errors.Is(dialErr, syscall.ECONNREFUSED) {
		return nil, err
	}
	if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket: %w", rmErr)
	}
	return net.Listen("unix", path)
}
