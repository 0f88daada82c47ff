package listener

import (
	"fmt"
	"net"
)

// Config describes one listener.
type Config struct {
	// Type is "tcp" (default) or "unix".
	Type string `yaml:"type"`
	// Address is host:port for tcp, a socket path for unix.
	Address string `yaml:"address"`
}

// Listen opens the listener cfg describes.
func Listen(cfg Config) (net.Listener, error) {
	switch cfg.Type {
	case "", "tcp":
		return net.Listen("tcp", cfg.Address)
	case "unix":
		return net.Listen("unix", cfg.Address)
	default:
		return nil, fmt.Errorf("listener %s: unknown type %q (want tcp or unix)", cfg.Address, cfg.Type)
	}
}
