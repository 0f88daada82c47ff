//go:build !linux

package broker

import (
	"errors"
	"net"
	"syscall"
)

// Without the Linux poller every connection keeps a goroutine (poll.go).

func pollable(net.Conn) syscall.RawConn { return nil }

func (c *conn) register() error { return errors.ErrUnsupported }

func (c *conn) arm() error { return errors.ErrUnsupported }

func (c *conn) unregister() {}

func (c *conn) readNow([]byte) (int, error) { return 0, errNoInput }
