package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// Defaults for the zero values of Options.
const (
	DefaultKeepAlive      = 60 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
)

// Options configure Connect.
type Options struct {
	// Address is the server's host:port, dialled over TCP when Dial and
	// URL are not set.
	Address string
	// URL, when set, names the server and the transport instead of
	// Address: tcp://, tls://, ws://, wss:// (see DialURL).
	URL string
	// TLSConfig is used for tls:// and wss:// URLs; nil means the system
	// roots and the URL's host name.
	TLSConfig *tls.Config
	// WebSocketHeader is sent with the WebSocket upgrade of ws:// and
	// wss:// URLs (an Authorization or a cookie a gateway wants).
	WebSocketHeader http.Header
	// Dial, when set, opens the connection instead of Address or URL (a
	// custom transport, a net.Pipe in tests). It is called once per
	// connection, with Connect's context.
	Dial func(ctx context.Context) (net.Conn, error)

	// Version is the protocol level: packet.V31, packet.V311 (when 0) or
	// packet.V5.
	Version byte
	// ClientID may be empty for 3.1.1 with CleanStart and for 5.0, where
	// the server assigns one (see Connack().Properties.AssignedClientID).
	// MQTT 3.1 servers require 1 to 23 characters.
	ClientID string
	// CleanStart starts a new session (Clean Session before v5). When false
	// the server resumes the session stored for ClientID.
	CleanStart bool
	// KeepAlive is the longest time without a packet sent before the
	// client sends PINGREQ; the server drops the connection after 1.5 times
	// it without a packet. 0 means DefaultKeepAlive; negative disables
	// keep-alive. It is rounded up to whole seconds, at most 65535.
	// Between 0 and 1 s it is refused: KeepAlive: 30 is 30ns.
	KeepAlive time.Duration

	Username    string
	UsernameSet bool // send Username, even when empty
	Password    []byte
	PasswordSet bool // send Password, even when empty; before v5 only with a user name

	// Auth, when set, authenticates with a v5 enhanced authentication
	// method (MQTT 5.0 4.12; SCRAM for SCRAM-SHA-256) in the CONNECT
	// exchange; Client.Reauthenticate runs it again. Version must be 5.
	Auth Authenticator

	// Will is published by the server when the connection ends without
	// DISCONNECT (Close, a network failure, a missed keep-alive).
	Will *packet.Will
	// Properties are the v5 CONNECT properties. Receive Maximum, Topic
	// Alias Maximum and Maximum Packet Size here also bound what this
	// client accepts from the server. Receive Maximum defaults to
	// InboxSize (at most 65535) when the inbox is bounded.
	Properties packet.Properties

	// OnMessage is called for every PUBLISH received that no handler
	// given to SubscribeFunc takes, in order, from one goroutine; for a
	// resumed session possibly before Connect returns. It may call the
	// Client's methods. The packet is the handler's to keep. A QoS 1 or 2
	// message is acknowledged when OnMessage returns (see ManualAck).
	// When nil, such messages are acknowledged and dropped.
	OnMessage func(*packet.Publish)

	// InboxSize bounds the received messages waiting for OnMessage or a
	// handler, in messages. When it is full the client stops reading the
	// connection until a handler returns, so that TCP slows the server
	// down; nothing is dropped. While a Publish (QoS 1 or 2), Subscribe
	// or Unsubscribe awaits the server's answer, which may sit behind
	// more messages, the client reads on up to InboxBytes, so that a
	// handler may publish and wait. 0 means DefaultInboxSize; negative
	// means no bound on the number (InboxBytes still applies).
	InboxSize int
	// InboxBytes bounds the same queue in bytes (each message counted
	// as its encoded size, its topic again and about 410 bytes),
	// whether or not an answer is awaited; a message larger than it is
	// queued alone. A handler that waits for an answer the server sent
	// after more than InboxBytes of messages waits until its context
	// ends. 0 means DefaultInboxBytes; negative means no bound.
	InboxBytes int

	// ManualAck leaves the acknowledgement of QoS 1 and 2 messages to the
	// application: it calls Ack (Client.Ack, Session.Ack) when it is done
	// with a message, possibly after the handler returned. Messages no
	// handler or OnMessage takes are acknowledged at once. The server
	// sends a message not acknowledged when its connection ended again
	// (persistent sessions), and it is delivered again.
	ManualAck bool

	// MaxInflight bounds the QoS 1 and 2 publishes in flight (sent, not
	// yet acknowledged) below the server's Receive Maximum; 0: the
	// server's. A server before MQTT 5 cannot say how many it takes, and
	// some drop what is beyond their own bound: Mosquitto 2.0 discards
	// QoS 2 messages beyond its max_inflight_messages (20 by default)
	// from a 3.1.1 client, acknowledging them all the same.
	MaxInflight int

	// NoTopicAliases stops the client from assigning v5 Topic Aliases to
	// the topics it publishes to. By default, when the server's CONNACK
	// allows aliases, a topic gets one the second time it is published,
	// while aliases are left.
	NoTopicAliases bool

	// ConnectTimeout bounds dialling and the CONNECT/CONNACK exchange, in
	// addition to Connect's context. 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration

	// WriteTimeout bounds each write to the connection: a write that does
	// not complete in time (the server stopped reading, the network is
	// gone) ends the connection, and Err says why. (The deadline moves
	// only every half timeout, so a write has between half and all of
	// it.) It is what bounds the
	// writes of calls whose context has no end (context.Background), of
	// acknowledgements and of PINGREQ; a call whose context ends returns
	// then in any case. 0 means DefaultWriteTimeout; negative, no bound.
	WriteTimeout time.Duration

	// Logger, when set, hears of what happens to the connection without a
	// caller to return it to: a connection's end (Debug), and for a
	// Session each connection (Info), failed attempt and loss (Warn) and
	// Store failure (Error). nil logs nothing.
	Logger *slog.Logger

	// Trace, when set, sees every packet sent (out true) and received,
	// from the goroutine sending or receiving it, before it is written or
	// handled. It is for debugging output and must not block or modify p.
	Trace func(out bool, p packet.Packet)

	// Set by a Session to carry state from one connection to the next.
	router   *Router         // handlers; nil: the Client's own
	received map[uint16]bool // inbound QoS 2 ids, as Client.received
	reserved []uint16        // packet ids of the session's unfinished publishes
	after    <-chan struct{} // delivery starts once it is closed: the previous connection's Done
}

// normalize fills in defaults and checks what the server would only refuse
// later with a less helpful answer.
func (o *Options) normalize() error {
	switch o.Version {
	case 0:
		o.Version = packet.V311
	case packet.V31, packet.V311, packet.V5:
	default:
		return fmt.Errorf("client: unsupported protocol version %d", o.Version)
	}
	if o.Dial == nil && o.Address == "" && o.URL == "" {
		return errors.New("client: no Address, URL or Dial")
	}
	if o.KeepAlive > 0 && o.KeepAlive < time.Second {
		// KeepAlive: 30 is 30ns, not 30 s (paho's KeepAlive is seconds).
		if o.KeepAlive <= math.MaxUint16 {
			return fmt.Errorf("client: KeepAlive %s: a time.Duration; did you mean %d * time.Second?", o.KeepAlive, int64(o.KeepAlive))
		}
		return fmt.Errorf("client: KeepAlive %s: less than 1 s (0 means the default, negative none)", o.KeepAlive)
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.KeepAlive > math.MaxUint16*time.Second {
		return fmt.Errorf("client: keep alive %s exceeds 65535 seconds", o.KeepAlive)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.InboxSize == 0 {
		o.InboxSize = DefaultInboxSize
	}
	if o.InboxBytes == 0 {
		o.InboxBytes = DefaultInboxBytes
	}
	if o.Will != nil {
		if err := topic.ValidateName(o.Will.Topic); err != nil {
			return fmt.Errorf("client: will topic: %w", err)
		}
		if o.Will.QoS > 2 {
			return fmt.Errorf("client: will QoS %d", o.Will.QoS)
		}
	}
	if o.Auth != nil && o.Version != packet.V5 {
		return errors.New("client: enhanced authentication (Auth) needs MQTT 5")
	}
	if o.PasswordSet && !o.UsernameSet && o.Version != packet.V5 {
		// [MQTT-3.1.2-22] before v5 a password needs a user name.
		return errors.New("client: a password needs a user name before MQTT 5")
	}
	return nil
}

// logger returns Logger, or one that discards.
func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return discardLogger
}

var discardLogger = slog.New(slog.DiscardHandler)

// keepAliveSeconds is the CONNECT Keep Alive field for o (normalized).
func (o *Options) keepAliveSeconds() uint16 {
	if o.KeepAlive < 0 {
		return 0
	}
	return uint16((o.KeepAlive + time.Second - 1) / time.Second)
}

func (o *Options) connectPacket() *packet.Connect {
	props := o.Properties
	if o.Version == packet.V5 && props.ReceiveMaximum == nil && o.InboxSize > 0 {
		// So that the server sends no more unacknowledged QoS 1 and 2
		// messages than the inbox holds [MQTT-3.3.4-9]: beyond, it
		// would wait for acknowledgements behind a full inbox anyway.
		props.ReceiveMaximum = new(uint16(min(o.InboxSize, math.MaxUint16)))
	}
	return &packet.Connect{
		ProtocolLevel: o.Version,
		CleanStart:    o.CleanStart,
		KeepAlive:     o.keepAliveSeconds(),
		Properties:    props,
		ClientID:      o.ClientID,
		Will:          o.Will,
		UsernameFlag:  o.UsernameSet,
		Username:      o.Username,
		PasswordFlag:  o.PasswordSet,
		Password:      o.Password,
	}
}
