package listener

import (
	"crypto/tls"
	"net"
)

// tlsListener serves MQTT over TLS. The handshake happens on the
// connection's first Read (or CertUsername), in the goroutine serving it,
// so a slow client never holds up Accept.
type tlsListener struct {
	net.Listener // a tls.NewListener
	files        *tlsFiles
	certField    string // TLSConfig.CertUsername
}

var _ Reloader = (*tlsListener)(nil)

// newTLSListener layers TLS over l (a PROXY header, if any, comes before
// the TLS bytes).
func newTLSListener(l net.Listener, files *tlsFiles, certField string) *tlsListener {
	return &tlsListener{
		Listener:  tls.NewListener(l, files.serverConfig(nil)),
		files:     files,
		certField: certField,
	}
}

// Accept returns a *tls.Conn, or a certConn around it when the listener
// names users by certificate.
func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || l.certField == "" {
		return c, err
	}
	return &certConn{Conn: c.(*tls.Conn), field: l.certField}, nil
}

// Reload re-reads the certificate, key and client CA bundle.
func (l *tlsListener) Reload() error { return l.files.Reload() }
