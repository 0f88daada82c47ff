package store

import (
	"cmp"
	"time"

	"github.com/ternmq/tern/packet"
)

// Message is an application message as stored: immutable once written.
// The broker passes the same *Message for every session a message is
// queued for, so that a store may keep it once for them all and give the
// outbound messages Load returns one shared *Message again.
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
	// The identity the session belongs to and its deliveries are
	// authorized for (auth.Client's fields of the same names).
	Username     string
	UsernameFlag bool // false: anonymous
	CertUsername bool // Username is a verified certificate's name
	Version      byte
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
	InboundQoS2   []Inbound  // in PacketID order
}

// Inbound is the packet id of a QoS 2 message received, its PUBREL not
// yet seen.
type Inbound struct {
	PacketID uint16
	// Token, unless 0, names the message's one forwarding through a
	// cluster: forwarded again under it when the client retransmits, it
	// is recognised and not delivered twice.
	Token uint64
}

// ByPacketID orders inbound ids as SessionState.InboundQoS2 lists them.
func ByPacketID(a, b Inbound) int { return cmp.Compare(a.PacketID, b.PacketID) }

// A Ticket names the writes submitted to a Store up to some point. Tickets
// grow over time; 0 names no write.
type Ticket uint64

// Store persists broker state. Writes are submitted without waiting and
// become durable in the order they were submitted; Wait tells when. This
// lets the broker keep reading while a group of writes is committed, and
// hold back only the acknowledgements that depend on them.
//
// Methods are safe for concurrent use.
type Store interface {
	PutSession(s Session) Ticket
	// DeleteSession removes the session and everything stored under it.
	DeleteSession(clientID string) Ticket

	PutSubscription(clientID string, sub Subscription) Ticket
	DeleteSubscription(clientID, filter string) Ticket

	// PutOutbound adds or replaces the outbound message (clientID,
	// o.Seq); a replacement that keeps o.Message and changes its state or
	// packet id need not write the message again.
	PutOutbound(clientID string, o Outbound) Ticket
	DeleteOutbound(clientID string, seq uint64) Ticket

	PutInboundQoS2(clientID string, in Inbound) Ticket
	DeleteInboundQoS2(clientID string, packetID uint16) Ticket

	PutRetained(m *Message) Ticket
	DeleteRetained(topic string) Ticket

	// Atomic runs f and commits the writes it submits together: after a
	// crash either all of them are there or none. Writes by other
	// goroutines meanwhile may join the same commit. f runs with no lock
	// held that a writer might wait for, and does not call Atomic.
	Atomic(f func())

	// Wait blocks until the writes named by t are as durable as the store
	// promises. An error means they may be lost; the store then refuses
	// every later write too.
	Wait(t Ticket) error

	// Load returns every stored session and retained message.
	Load() ([]SessionState, []*Message, error)
	Close() error
}

// Shared is a Store that the nodes of a cluster share: a session one node
// releases, another loads and goes on writing.
type Shared interface {
	Store
	// Release forgets session clientID without deleting it: another node
	// takes it over. The ticket names every write submitted before.
	Release(clientID string) Ticket
	// LoadSession reads session clientID as stored (nil if there is none)
	// and makes this store its writer.
	LoadSession(clientID string) (*SessionState, error)
}
