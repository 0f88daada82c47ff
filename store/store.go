package store

import (
	"time"

	"github.com/ternmq/tern/packet"
)

// Message is an application message as stored: immutable once written.
type Message struct {
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	Properties packet.Properties // v5 application properties
	Expiry     time.Time         // zero: never expires
}

// Session is the durable part of a session's identity.
type Session struct {
	ClientID string
	Version  byte
	// ExpiryInterval is the v5 Session Expiry Interval in seconds;
	// 0xFFFFFFFF (also for 3.1.1 persistent sessions) never expires.
	ExpiryInterval uint32
	// Expiry is when the session ends, set while its client is away; zero
	// while connected (then it ends ExpiryInterval after a restart).
	Expiry time.Time
	// Will is a will waiting for its Will Delay Interval, due at WillAt.
	Will   *Message
	WillAt time.Time
}

// Subscription is one filter a session subscribed to, with its options.
type Subscription struct {
	packet.Subscription
	SubscriptionID uint32 // v5, 0 when absent
}

// Outbound states.
const (
	Queued   byte = iota // not yet sent
	Sent                 // PUBLISH sent, waiting for PUBACK/PUBREC
	Released             // QoS 2: PUBREL sent, waiting for PUBCOMP
)

// Outbound is a message on its way to one session. Seq orders a session's
// outbound messages; PacketID is set once the message has been sent.
type Outbound struct {
	Seq      uint64
	PacketID uint16
	State    byte
	QoS      byte // effective QoS for this subscriber
	Retain   bool // retain flag to deliver with
	SubIDs   []uint32
	// SharedGroup and SharedFilter name the shared subscription the
	// message came through, so it can go to another member.
	SharedGroup, SharedFilter string
	Message                   *Message
}

// SessionState is everything stored for one session, as Load returns it.
type SessionState struct {
	Session       Session
	Subscriptions []Subscription
	Outbound      []Outbound // in Seq order
	InboundQoS2   []uint16   // packet ids received with QoS 2, PUBREL not yet seen
}

// Store persists broker state. Methods are safe for concurrent use. A nil
// error from a Put means the write is as durable as the store promises.
type Store interface {
	PutSession(s Session) error
	// DeleteSession removes the session and everything stored under it.
	DeleteSession(clientID string) error

	PutSubscription(clientID string, sub Subscription) error
	DeleteSubscription(clientID, filter string) error

	PutOutbound(clientID string, o Outbound) error
	DeleteOutbound(clientID string, seq uint64) error

	PutInboundQoS2(clientID string, packetID uint16) error
	DeleteInboundQoS2(clientID string, packetID uint16) error

	PutRetained(m *Message) error
	DeleteRetained(topic string) error

	// Load returns every stored session and retained message.
	Load() ([]SessionState, []*Message, error)
	Close() error
}
