package auth

import (
	"context"
	"strconv"
)

// Identity is who a client is, as far as ownership of a session goes: the
// name it authenticated as (from CONNECT, an enhanced authentication or a
// verified certificate), or nobody. A persistent session belongs to the
// identity that made it; a client of another identity may not resume it
// or take it over unless a ConnectAuthorizer grants that client id
// explicitly.
type Identity struct {
	Username  string
	Anonymous bool // the client sent no username and has no certificate name
	Cert      bool // Username is the name in a verified client certificate
}

// Identity returns the identity c authenticated as.
func (c *Client) Identity() Identity {
	return Identity{Username: c.Username, Anonymous: !c.UsernameFlag, Cert: c.CertUsername}
}

// String is the identity as logs show it.
func (id Identity) String() string {
	switch {
	case id.Anonymous:
		return "anonymous"
	case id.Cert:
		return "certificate " + strconv.Quote(id.Username)
	}
	return "user " + strconv.Quote(id.Username)
}

// ClientIDDecision is a ConnectAuthorizer's answer about a client id.
type ClientIDDecision uint8

const (
	// ClientIDDefault: no rule either way. The id may be used unless a
	// session of another identity holds it.
	ClientIDDefault ClientIDDecision = iota
	// ClientIDAllowed: granted explicitly. The id may be used even when
	// a session of another identity holds it; that session then passes
	// to this identity (what it holds is authorized for it anew).
	ClientIDAllowed
	// ClientIDDenied: the client may not use this id (CONNACK 3.1.1
	// return code 2 / v5 0x85 Client Identifier not valid).
	ClientIDDenied
)

// ConnectAuthorizer is an optional interface of an Authorizer: the
// connect-time decision whether an authenticated client c may use its
// client id (c.ClientID). An error is a failure to decide; the broker
// then refuses the client with "server unavailable" (it fails closed).
type ConnectAuthorizer interface {
	AuthorizeClientID(ctx context.Context, c *Client) (ClientIDDecision, error)
}

func (d ClientIDDecision) String() string {
	switch d {
	case ClientIDDefault:
		return "default"
	case ClientIDAllowed:
		return "allowed"
	case ClientIDDenied:
		return "denied"
	}
	return "ClientIDDecision(" + strconv.Itoa(int(d)) + ")"
}
