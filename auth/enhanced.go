package auth

import "context"

// EnhancedAuthenticator implements one MQTT 5.0 Authentication Method
// (spec 4.12), a SASL-style challenge/response mechanism such as
// SCRAM-SHA-256. It is shared by all connections and must be safe for
// concurrent use; the per-client state lives in the Exchange it starts.
//
// The broker drives it in exactly this order:
//
//  1. CONNECT carries Authentication Method m. The broker picks the
//     EnhancedAuthenticator whose Method() == m (none: CONNACK 0x8C Bad
//     authentication method, [MQTT-4.12.0-1]) and calls Start(ctx, c).
//  2. It calls Step(ctx, data) with the CONNECT's Authentication Data
//     (nil when absent).
//  3. While Step returns done == false and err == nil, it sends AUTH 0x18
//     Continue authentication with out as Authentication Data
//     [MQTT-4.12.0-2], waits for the client's AUTH 0x18 [MQTT-4.12.0-3],
//     and calls Step with that packet's Authentication Data.
//  4. done == true: CONNACK 0x00 with out (if non-empty) as Authentication
//     Data. err != nil: CONNACK with the code errors.Is maps
//     (ErrBadCredentials 0x86, ErrNotAuthorized 0x87, other 0x80/0x88) and
//     close [MQTT-4.12.0-4].
//
// Re-authentication (spec 4.12.1) is the same loop started by an AUTH 0x19
// Re-authenticate carrying the same method [MQTT-4.12.1-1]: Start, then
// Step with the 0x19 packet's data, AUTH 0x18 both ways, and AUTH 0x00
// Success with the final out when done. On error the broker sends
// DISCONNECT (0x87 Not authorized; DISCONNECT has no 0x86) and closes
// [MQTT-4.12.1-2].
type EnhancedAuthenticator interface {
	// Method is the Authentication Method name, compared byte for byte.
	Method() string
	// Start creates an Exchange for client c. It does not see any
	// Authentication Data: the first Step does. c describes the client as
	// the broker knows it at that moment (for re-authentication: the
	// identity established earlier); implementations copy what they need
	// and do not keep c.
	Start(ctx context.Context, c *Client) (Exchange, error)
}

// Exchange is one authentication conversation with one client. It is used
// by one goroutine at a time and is finished once Step has returned
// done == true or an error; any further Step fails.
type Exchange interface {
	// Step consumes the client's Authentication Data and returns the
	// server's next Authentication Data. done reports that the client is
	// authenticated; out may still carry final data to send with the
	// CONNACK / AUTH 0x00 (e.g. the SCRAM server-final-message), and the
	// client may need it to authenticate the server. A non-nil error means
	// authentication failed and wraps ErrBadCredentials or ErrNotAuthorized
	// when the client is to blame; other errors are server faults. Step
	// does not retain in (it may alias the packet read buffer).
	Step(ctx context.Context, in []byte) (out []byte, done bool, err error)
	// Username is the authenticated identity once Step has returned
	// done == true, "" before. The broker should adopt it as
	// Client.Username (UsernameFlag true) so that Authorizers and later
	// re-authentications see it.
	Username() string
}
