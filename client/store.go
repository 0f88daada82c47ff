package client

import (
	"errors"

	"github.com/ternmq/tern/packet"
)

// ErrQueueFull is returned by Session.Publish when SessionOptions.MaxQueued
// messages are already waiting to be sent or acknowledged.
var ErrQueueFull = errors.New("client: session queue full")

// Store keeps a Session's unfinished QoS 1 and 2 publishes so that they
// outlive the process: a Session writes each one before it is sent (before
// Publish can return), updates it when it gets a packet identifier and
// when its QoS 2 flow reaches PUBREL, deletes it when its flow is
// complete, and loads what is left when it starts. Without a Store they
// are kept in memory only. DirStore is the one this package provides. A
// Store is used by one Session at a time, from several goroutines.
type Store interface {
	// Put writes m, replacing the message with the same Seq, and returns
	// once it is durable.
	Put(m StoredMessage) error
	// Delete removes the message with sequence number seq.
	Delete(seq uint64) error
	// Load returns the stored messages in Seq order.
	Load() ([]StoredMessage, error)
	Close() error
}

// StoredMessage is one publish in a Store.
type StoredMessage struct {
	Seq      uint64 // order of Publish calls; unique in the Store
	PacketID uint16 // 0: never sent; else sent under this id (a resend sets DUP)
	Pubrel   bool   // QoS 2: PUBREC received, so a resend is the PUBREL
	Publish  *packet.Publish
}
