package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ternmq/tern/packet"
)

var (
	// ErrClosed is returned by operations on a client that Close or
	// Disconnect ended, and by Err after Close.
	ErrClosed = errors.New("client: closed")
	// ErrKeepAliveTimeout ends a connection whose PINGRESP did not come
	// within the keep-alive interval.
	ErrKeepAliveTimeout = errors.New("client: no PINGRESP within the keep alive interval")
	// ErrNoPacketID is returned when all 65535 packet identifiers are in use.
	ErrNoPacketID = errors.New("client: no free packet identifier")
)

// ConnectError is returned by Connect when the server refuses the
// connection. It matches the CONNACK's reason code with errors.Is; a 3.1 or
// 3.1.1 return code also matches its v5 equivalent, so
// errors.Is(err, packet.NotAuthorized) holds for every protocol version.
type ConnectError struct {
	Version byte // the protocol level the CONNACK was read with
	Connack *packet.Connack
}

func (e *ConnectError) Error() string {
	s := "connection refused: " + connackText(e.Version, e.Connack.ReasonCode)
	if r := e.Connack.Properties.ReasonString; r != "" {
		s += " (" + r + ")"
	}
	return s
}

// Unwrap returns the CONNACK reason code.
func (e *ConnectError) Unwrap() error { return e.Connack.ReasonCode }

// Is matches the v5 equivalent of a 3.1/3.1.1 return code.
func (e *ConnectError) Is(target error) bool {
	c, ok := target.(packet.ReasonCode)
	if !ok || e.Version == packet.V5 {
		return false
	}
	v5, ok := connack3to5[e.Connack.ReasonCode]
	return ok && c == v5
}

// The 3.1.1 CONNACK return codes share numbers with unrelated v5 reason
// codes (4 is "disconnect with will message" in v5), so they need their own
// names and mapping.
var (
	connack3Names = map[packet.ReasonCode]string{
		packet.RefusedProtocolVersion:     "unacceptable protocol version",
		packet.RefusedIdentifierRejected:  "identifier rejected",
		packet.RefusedServerUnavailable:   "server unavailable",
		packet.RefusedBadUsernamePassword: "bad user name or password",
		packet.RefusedNotAuthorized:       "not authorized",
	}
	connack3to5 = map[packet.ReasonCode]packet.ReasonCode{
		packet.RefusedProtocolVersion:     packet.UnsupportedProtocolVersion,
		packet.RefusedIdentifierRejected:  packet.ClientIDNotValid,
		packet.RefusedServerUnavailable:   packet.ServerUnavailable,
		packet.RefusedBadUsernamePassword: packet.BadUsernameOrPassword,
		packet.RefusedNotAuthorized:       packet.NotAuthorized,
	}
)

func connackText(version byte, c packet.ReasonCode) string {
	if version != packet.V5 {
		if s, ok := connack3Names[c]; ok {
			return s
		}
		return fmt.Sprintf("return code %d", byte(c))
	}
	return c.Error()
}

// ReasonError is a failure the server reported with a v5 reason code: in
// the PUBACK, PUBREC or PUBCOMP answering Publish, or in a DISCONNECT that
// ended the connection (then Err returns it). It matches Code with
// errors.Is.
type ReasonError struct {
	Type   packet.Type       // PUBACK, PUBREC, PUBCOMP or DISCONNECT
	Code   packet.ReasonCode // 0x80 and above, or any code in a DISCONNECT
	Reason string            // the Reason String property, if any
}

func (e *ReasonError) Error() string {
	var s string
	if e.Type == packet.DISCONNECT {
		s = "client: server disconnected: " + e.Code.Error()
	} else {
		s = fmt.Sprintf("client: server answered %s: %s", e.Type, e.Code.Error())
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// Unwrap returns the reason code.
func (e *ReasonError) Unwrap() error { return e.Code }

// SubscribeError is returned with the SUBACK when the server refused some
// of a SUBSCRIBE's filters; the others are subscribed. It matches each
// refusal's code with errors.Is (errors.Is(err, packet.NotAuthorized)),
// and Suback holds a code per filter.
type SubscribeError struct {
	Filters []string            // the refused filters
	Codes   []packet.ReasonCode // their codes, in the same order
	Suback  *packet.Suback
}

func (e *SubscribeError) Error() string {
	var b strings.Builder
	b.WriteString("client: subscription refused:")
	for i, f := range e.Filters {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %q (%s)", f, e.Codes[i].Error())
	}
	return b.String()
}

// Unwrap returns the refusals' codes.
func (e *SubscribeError) Unwrap() []error {
	errs := make([]error, len(e.Codes))
	for i, c := range e.Codes {
		errs[i] = c
	}
	return errs
}

// subscribeError returns a *SubscribeError for the filters of subs that sa
// refuses, or nil.
func subscribeError(sa *packet.Suback, subs []packet.Subscription) error {
	var e *SubscribeError
	for i, code := range sa.ReasonCodes {
		if code.IsFailure() && i < len(subs) {
			if e == nil {
				e = &SubscribeError{Suback: sa}
			}
			e.Filters = append(e.Filters, subs[i].Filter)
			e.Codes = append(e.Codes, code)
		}
	}
	if e == nil {
		return nil
	}
	return e
}
