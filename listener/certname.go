package listener

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// handshakeTimeout bounds the TLS handshake CertUsername completes when the
// connection has not read yet.
const handshakeTimeout = 10 * time.Second

// certConn is a TLS connection whose verified client certificate names
// the client. Embedding *tls.Conn keeps every method of it (deadlines,
// Close, CloseWrite, ConnectionState, NetConn) as it is.
type certConn struct {
	*tls.Conn
	field string // cn or san
}

// CertUsername completes the handshake if it has not happened yet and
// returns the name the verified client certificate gives; false when the
// client sent none or the handshake failed.
func (c *certConn) CertUsername() (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		return "", false
	}
	return certName(c.ConnectionState(), c.field)
}

// wsCertConn is a WebSocket connection whose TLS handshake completed
// before the HTTP upgrade, so its certificate name is known on accept.
type wsCertConn struct {
	net.Conn
	name string
	ok   bool
}

// CertUsername returns the name the verified client certificate gave.
func (c *wsCertConn) CertUsername() (string, bool) { return c.name, c.ok }

// certName reads the user name from the verified leaf certificate of cs:
// its Common Name (field cn), or its first DNS name, else its first e-mail
// address (field san). Only verified chains count: a certificate the
// client merely presented names no one.
func certName(cs tls.ConnectionState, field string) (string, bool) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", false
	}
	leaf := cs.VerifiedChains[0][0]
	var name string
	switch field {
	case "cn":
		name = leaf.Subject.CommonName
	case "san":
		if len(leaf.DNSNames) > 0 {
			name = leaf.DNSNames[0]
		} else if len(leaf.EmailAddresses) > 0 {
			name = leaf.EmailAddresses[0]
		}
	}
	return name, name != ""
}
