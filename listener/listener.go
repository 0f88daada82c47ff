package listener

import (
	"fmt"
	"net"
)

// Reloader is implemented by the listeners that read files (tls, wss):
// Reload re-reads the certificate, key and client CA bundle and puts them in
// force for new handshakes, leaving established connections alone. On any
// error the files in force stay in force and the error names the file.
type Reloader interface {
	Reload() error
}

// Listen validates cfg and opens the listener it describes. Whatever the
// kind, Accept returns a net.Conn that carries MQTT bytes; errors name the
// listener.
func Listen(cfg Config) (net.Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	// Certificates are read before the socket opens, so that a bad file
	// leaves nothing behind.
	var files *tlsFiles
	if cfg.Type == TypeTLS || cfg.Type == TypeWSS {
		var err error
		if files, err = loadTLSFiles(cfg.TLS); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.name(), err)
		}
	}
	raw, err := listenSocket(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.name(), err)
	}
	l, err := withProxy(raw, cfg)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("%s: %w", cfg.name(), err)
	}
	switch cfg.Type {
	case TypeTLS:
		return newTLSListener(l, files, cfg.TLS.CertUsername), nil
	case TypeWS:
		return newWSListener(l, cfg, nil), nil
	case TypeWSS:
		return wssListener{newWSListener(l, cfg, files)}, nil
	}
	return l, nil
}

// listenSocket opens the stream socket under every kind.
func listenSocket(cfg Config) (net.Listener, error) {
	if cfg.Type == TypeUnix {
		return listenUnix(cfg.Address)
	}
	return net.Listen("tcp", cfg.Address)
}

// errClosed is what Accept returns once a listener of ours is closed; it
// matches net.ErrClosed, as the standard listeners' errors do.
func errClosed(addr net.Addr) error {
	return &net.OpError{Op: "accept", Net: addr.Network(), Addr: addr, Err: net.ErrClosed}
}
