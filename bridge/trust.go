package bridge

import (
	"context"
	"net"
	"strings"

	"github.com/ternmq/tern/auth"
)

// LocalAddr is the remote address of a bridge's local connection. Only
// this package makes connections with it, in process: a network client
// cannot present it.
type LocalAddr struct{ Bridge string }

func (a LocalAddr) Network() string { return "bridge" }
func (a LocalAddr) String() string  { return "bridge:" + a.Bridge }

// pipeConn is the broker's end of a bridge's in-process connection.
type pipeConn struct {
	net.Conn
	addr LocalAddr
}

func (c pipeConn) RemoteAddr() net.Addr { return c.addr }

// isBridge reports whether c is a bridge's local side: connected over the
// in-process pipe, or (a session loaded from the store, not connected
// yet) holding a bridge's client id, which only bridges can take.
func isBridge(c *auth.Client) bool {
	if c == nil {
		return false
	}
	if _, ok := c.RemoteAddr.(LocalAddr); ok {
		return true
	}
	return c.RemoteAddr == nil && strings.HasPrefix(c.ClientID, LocalIDPrefix)
}

// Trust wraps the broker's authenticator and authorizer so that bridges
// connect and forward whatever the configuration says, without a user of
// their own, and no one else may use a bridge's client id ("$bridge/...").
func Trust(authn auth.Authenticator, authz auth.Authorizer) (auth.Authenticator, auth.Authorizer) {
	return trustAuthn{authn}, trustAuthz{authz}
}

type trustAuthn struct{ auth.Authenticator }

func (t trustAuthn) Authenticate(ctx context.Context, c *auth.Client) error {
	if _, ok := c.RemoteAddr.(LocalAddr); ok {
		return nil
	}
	if strings.HasPrefix(c.ClientID, LocalIDPrefix) {
		return auth.ErrNotAuthorized
	}
	return t.Authenticator.Authenticate(ctx, c)
}

type trustAuthz struct{ auth.Authorizer }

var (
	_ auth.Authorizer        = trustAuthz{}
	_ auth.ConnectAuthorizer = trustAuthz{}
)

func (t trustAuthz) Authorize(c *auth.Client, action auth.Action, topic string) bool {
	if isBridge(c) {
		return true
	}
	return t.Authorizer.Authorize(c, action, topic)
}

// AuthorizeClientID keeps the "$bridge/" ids for bridges also from
// clients that authenticate otherwise (v5 enhanced authentication).
func (t trustAuthz) AuthorizeClientID(ctx context.Context, c *auth.Client) (auth.ClientIDDecision, error) {
	_, local := c.RemoteAddr.(LocalAddr)
	switch {
	case local:
		return auth.ClientIDAllowed, nil
	case strings.HasPrefix(c.ClientID, LocalIDPrefix):
		return auth.ClientIDDenied, nil
	}
	if ca, ok := t.Authorizer.(auth.ConnectAuthorizer); ok {
		return ca.AuthorizeClientID(ctx, c)
	}
	return auth.ClientIDDefault, nil
}
