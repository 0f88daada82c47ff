package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
)

// MQTT 5.0 enhanced authentication (spec 4.12): a challenge/response
// exchange of AUTH packets, driven through auth.EnhancedAuthenticator, at
// CONNECT and again whenever the client asks to re-authenticate.

// enhancedConnect runs the exchange a CONNECT with an Authentication
// Method starts. It returns the final Authentication Data for CONNACK, or
// a refusal code and why.
func (c *conn) enhancedConnect(p *packet.Connect) ([]byte, packet.ReasonCode, error) {
	method := p.Properties.AuthMethod
	a := c.b.enhancedAuth(method)
	if a == nil {
		// [MQTT-4.12.0-1] an unsupported method is refused.
		return nil, packet.BadAuthenticationMethod, fmt.Errorf("authentication method %q not supported", method)
	}
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	ex, err := a.Start(ctx, c.client)
	if err != nil {
		return nil, packet.UnspecifiedError, err
	}
	data := p.Properties.AuthData
	var held int64 // reserved for the AUTH packet data comes from
	defer func() { c.b.releasePreAuth(held) }()
	for {
		out, done, err := ex.Step(ctx, data)
		c.b.releasePreAuth(held)
		held = 0
		if err != nil {
			return nil, authFailure(err, packet.BadUsernameOrPassword), err
		}
		if done {
			c.rare().authMethod = method
			c.client.Username, c.client.UsernameFlag = ex.Username(), true // not shared yet
			return out, packet.Success, nil
		}
		// [MQTT-4.12.0-2] continue with AUTH 0x18; the client answers
		// with AUTH 0x18 and the same method [MQTT-4.12.0-3].
		c.sendPacket(&packet.Auth{ReasonCode: packet.ContinueAuthentication,
			Properties: packet.Properties{AuthMethod: method, AuthData: out}})
		// Still before CONNACK: the AUTH is bounded as the CONNECT was.
		pk, n, err := c.readPreAuth(packet.V5)
		held = n
		if err != nil {
			code := packet.UnspecifiedError
			switch {
			case errors.Is(err, packet.PacketTooLarge):
				code = packet.PacketTooLarge
			case errors.Is(err, errPreAuthMemory):
				code = packet.ServerBusy
			}
			return nil, code, err
		}
		in, ok := pk.(*packet.Auth)
		if !ok || in.ReasonCode != packet.ContinueAuthentication || in.Properties.AuthMethod != method {
			return nil, packet.ProtocolError, fmt.Errorf("expected AUTH 0x18 for %q, got %s", method, pk.Type())
		}
		data = in.Properties.AuthData
	}
}

// enhancedAuth returns the authenticator offered for method, or nil.
func (b *Broker) enhancedAuth(method string) auth.EnhancedAuthenticator {
	for _, a := range b.opts().EnhancedAuth {
		if a.Method() == method {
			return a
		}
	}
	return nil
}

// onAuth handles AUTH on a live connection: re-authentication with the
// method the connection was authenticated with [MQTT-4.12.1-1]. A failure
// ends the connection [MQTT-4.12.1-2].
func (c *conn) onAuth(p *packet.Auth) error {
	method := p.Properties.AuthMethod
	var current string
	if c.x != nil {
		current = c.x.authMethod
	}
	if c.version != packet.V5 || current == "" || method != current {
		return fmt.Errorf("AUTH with method %q on a connection authenticated with %q: %w", method, current, packet.ProtocolError)
	}
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	x := c.rare()
	switch {
	case p.ReasonCode == packet.ReAuthenticate && x.reauth == nil:
		a := c.b.enhancedAuth(method)
		if a == nil {
			// Withdrawn by a reload since this connection authenticated.
			return fmt.Errorf("re-authentication: method %q no longer offered: %w", method, packet.BadAuthenticationMethod)
		}
		ex, err := a.Start(ctx, c.client)
		if err != nil {
			return fmt.Errorf("re-authentication: %v: %w", err, packet.UnspecifiedError)
		}
		x.reauth = ex
	case p.ReasonCode == packet.ContinueAuthentication && x.reauth != nil:
	default:
		return fmt.Errorf("AUTH %#x out of turn: %w", byte(p.ReasonCode), packet.ProtocolError)
	}
	out, done, err := x.reauth.Step(ctx, p.Properties.AuthData)
	if err != nil {
		x.reauth = nil
		return fmt.Errorf("re-authentication failed: %v: %w", err, authFailure(err, packet.NotAuthorized))
	}
	code := packet.ContinueAuthentication
	if done {
		code = packet.Success
		name := x.reauth.Username()
		x.reauth = nil
		if name != c.client.Username {
			// The session belongs to the identity that made it, and the
			// connection's identity is fixed (routing reads it
			// concurrently): becoming someone else takes a new CONNECT.
			return fmt.Errorf("re-authentication as %q on a connection of %s: %w", name, c.client.Identity(), packet.NotAuthorized)
		}
	}
	c.sendPacket(&packet.Auth{ReasonCode: code, Properties: packet.Properties{AuthMethod: method, AuthData: out}})
	return nil
}

// authFailure maps an authentication error to a reason code; bad is the
// code for bad credentials (DISCONNECT has no 0x86).
func authFailure(err error, bad packet.ReasonCode) packet.ReasonCode {
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		return bad
	case errors.Is(err, auth.ErrNotAuthorized):
		return packet.NotAuthorized
	case errors.Is(err, context.DeadlineExceeded):
		return packet.ServerBusy
	}
	return packet.UnspecifiedError
}
