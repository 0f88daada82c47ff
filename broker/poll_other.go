//go:build !linux

package broker

import (
	"errors"
	"net"
)

// Without the Linux poller every connection keeps a goroutine (poll.go).

func parkable(nc net.Conn) (net.Conn, bool) { return nc, false }

func (c *conn) idle() {}

func (c *conn) register() error { return errors.ErrUnsupported }

func (c *conn) arm() error { return errors.ErrUnsupported }

func (c *conn) unregister() {}

func (c *conn) readNow([]byte) (int, error) { return 0, errNoInput }
