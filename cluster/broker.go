package cluster

import (
	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/store"
)

// Broker is what a node needs of the local broker; *broker.Broker has it.
type Broker interface {
	RemotePublish(m *store.Message, from string, stored func())
	RedeliverTo(id string, m *store.Message, from string) store.Ticket
	AdoptSession(st *store.SessionState) error
	RemoteShared(m *store.Message, from, group, filter string) bool
	RemoteRetained(m *store.Message)
	RetainedTopics() []string
	RetainedMessage(topic string) (*store.Message, error)
	SessionIDs() []string
	HasSession(id string) bool
	ReleaseSession(id string, to auth.Identity, granted, clean bool) (*store.SessionState, error)
	ImportSession(st *store.SessionState) error
}

var (
	_ Broker         = (*broker.Broker)(nil)
	_ broker.Cluster = (*Node)(nil)
)
