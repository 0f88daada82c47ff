package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/ternmq/tern/auth/scram"
	"github.com/ternmq/tern/packet"
)

// Authenticator is the client side of a v5 enhanced authentication method
// (MQTT 5.0 4.12), set in Options.Auth: it runs in the CONNECT/CONNACK
// exchange and again for each Client.Reauthenticate. SCRAM returns one.
type Authenticator interface {
	// Method is the Authentication Method, such as "SCRAM-SHA-256".
	Method() string
	// Start begins an exchange and returns the Authentication Data of the
	// CONNECT (or of the AUTH starting a re-authentication).
	Start() (first []byte, ex AuthExchange, err error)
}

// AuthExchange is one enhanced authentication exchange.
type AuthExchange interface {
	// Step answers the data of the server's AUTH 0x18 (Continue
	// Authentication) with the data of the client's.
	Step(server []byte) ([]byte, error)
	// Finish checks the data of the CONNACK (or AUTH 0x00) that ends the
	// exchange: for SCRAM, the server's proof that it knows the
	// credentials. An error ends the connection.
	Finish(server []byte) error
}

// SCRAM returns an Authenticator for SCRAM-SHA-256 (auth/scram) as
// username with password. The server's signature is checked: a server
// that does not know the credentials is refused.
func SCRAM(username, password string) Authenticator {
	return scramAuth{username, password}
}

type scramAuth struct{ user, password string }

func (a scramAuth) Method() string { return scram.Method }

func (a scramAuth) Start() ([]byte, AuthExchange, error) {
	c := scram.NewClient(a.user, a.password)
	return c.First(), scramExchange{c}, nil
}

type scramExchange struct{ c *scram.Client }

func (e scramExchange) Step(server []byte) ([]byte, error) { return e.c.Final(server) }
func (e scramExchange) Finish(server []byte) error         { return e.c.Verify(server) }

// ErrAuthInProgress is returned by Reauthenticate while another runs.
var ErrAuthInProgress = errors.New("client: a re-authentication is in progress")

// reauth is a re-authentication in progress; mu guards Client.reauth.
type reauth struct {
	ex   AuthExchange
	done chan error // capacity 1
}

// authStep answers an AUTH 0x18 from the server, in the handshake or a
// re-authentication.
func (c *Client) authStep(ex AuthExchange, p *packet.Auth) (*packet.Auth, error) {
	if p.Properties.AuthMethod != c.opts.Auth.Method() {
		// [MQTT-4.12.0-5] the same method throughout.
		return nil, fmt.Errorf("client: AUTH with method %q, want %q: %w", p.Properties.AuthMethod, c.opts.Auth.Method(), packet.ProtocolError)
	}
	data, err := ex.Step(p.Properties.AuthData)
	if err != nil {
		return nil, fmt.Errorf("client: authentication: %w", err)
	}
	return &packet.Auth{ReasonCode: packet.ContinueAuthentication,
		Properties: packet.Properties{AuthMethod: c.opts.Auth.Method(), AuthData: data}}, nil
}

// Reauthenticate runs a new enhanced authentication exchange on the open
// connection (AUTH 0x19, MQTT 5.0 4.12.1), with Options.Auth, for
// credentials that expire. It returns when the server has accepted it
// (and the Authenticator has checked the server's answer) or ctx ends. A
// server that refuses it ends the connection (Err says why).
func (c *Client) Reauthenticate(ctx context.Context) error {
	if c.opts.Auth == nil {
		return errors.New("client: Reauthenticate without Options.Auth")
	}
	first, ex, err := c.opts.Auth.Start()
	if err != nil {
		return fmt.Errorf("client: authentication: %w", err)
	}
	r := &reauth{ex: ex, done: make(chan error, 1)}
	c.mu.Lock()
	if c.ending || c.disconnecting {
		err := c.closedErr()
		c.mu.Unlock()
		return err
	}
	if c.reauth != nil {
		c.mu.Unlock()
		return ErrAuthInProgress
	}
	c.reauth = r
	c.mu.Unlock()
	if err := c.send(ctx, &packet.Auth{ReasonCode: packet.ReAuthenticate,
		Properties: packet.Properties{AuthMethod: c.opts.Auth.Method(), AuthData: first}}); err != nil && ctx.Err() == nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closedErr()
	}
}

// handleAuth acts on an AUTH from the server after the CONNACK: a step
// or the end of a re-authentication.
func (c *Client) handleAuth(p *packet.Auth) error {
	c.mu.Lock()
	r := c.reauth
	if r != nil && p.ReasonCode == packet.Success {
		c.reauth = nil
	}
	c.mu.Unlock()
	if r == nil || c.version != packet.V5 {
		// [MQTT-4.12.0-6] no AUTH the client did not ask for.
		return fmt.Errorf("client: unexpected AUTH from server: %w", packet.ProtocolError)
	}
	switch p.ReasonCode {
	case packet.ContinueAuthentication:
		out, err := c.authStep(r.ex, p)
		if err != nil {
			return err
		}
		c.reply(out)
		return nil
	case packet.Success:
		err := r.ex.Finish(p.Properties.AuthData)
		r.done <- err
		if err != nil {
			return fmt.Errorf("client: re-authentication: %w", err)
		}
		return nil
	}
	return fmt.Errorf("client: AUTH reason code %#x: %w", byte(p.ReasonCode), packet.ProtocolError)
}
