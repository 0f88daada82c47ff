package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
)

// Client is what the broker knows about a client when it asks for a
// decision.
type Client struct {
	ClientID     string
	Username     string
	UsernameFlag bool // false: the client sent no username (anonymous)
	Password     []byte
	RemoteAddr   net.Addr
	Version      byte // protocol level
	// CertUsername: Username is the name in a verified client
	// certificate, and the certificate was the credential.
	CertUsername bool
}

// Errors an Authenticator returns; the broker maps them to CONNACK codes.
var (
	ErrBadCredentials = errors.New("bad username or password")
	ErrNotAuthorized  = errors.New("not authorized")
)

// Authenticator decides whether a client may connect. It returns nil,
// ErrBadCredentials, ErrNotAuthorized, or another error (server unavailable).
type Authenticator interface {
	Authenticate(ctx context.Context, c *Client) error
}

// Action is what a client asks to do with a topic.
type Action uint8

const (
	Publish   Action = iota + 1 // send to a topic name
	Subscribe                   // subscribe to a topic filter
	Read                        // receive a message on a topic name (retained or forwarded)
)

// Authorizer decides whether a connected client may perform action on
// topic (a topic name for Publish and Read, a filter for Subscribe).
type Authorizer interface {
	Authorize(c *Client, action Action, topic string) bool
}

// AllowAll authorizes everything.
type AllowAll struct{}

var _ Authorizer = AllowAll{}

func (AllowAll) Authorize(*Client, Action, string) bool { return true }

// Static authenticates against a fixed user table. Anonymous clients (no
// username) are accepted only when AllowAnonymous is set.
type Static struct {
	AllowAnonymous bool
	users          map[string][32]byte
}

var _ Authenticator = (*Static)(nil)

// NewStatic returns a Static authenticator for users (name -> password).
func NewStatic(allowAnonymous bool, users map[string]string) *Static {
	s := &Static{AllowAnonymous: allowAnonymous, users: make(map[string][32]byte, len(users))}
	for name, pw := range users {
		s.users[name] = sha256.Sum256([]byte(pw))
	}
	return s
}

func (s *Static) Authenticate(_ context.Context, c *Client) error {
	if !c.UsernameFlag {
		if s.AllowAnonymous {
			return nil
		}
		return ErrNotAuthorized
	}
	want, ok := s.users[c.Username]
	// Compare digests in constant time so timing reveals neither the
	// password nor whether the user exists.
	got := sha256.Sum256(c.Password)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 || !ok {
		return ErrBadCredentials
	}
	return nil
}
