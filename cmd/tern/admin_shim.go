package main

// Placeholder until the broker has its administrative methods: at the
// merge this file becomes
//
//	func adminBroker(b *broker.Broker) admin.Broker { return b }

import (
	"github.com/ternmq/tern/admin"
	"github.com/ternmq/tern/broker"
)

// adminBroker is the broker as the admin server sees it.
func adminBroker(b *broker.Broker) admin.Broker { return brokerShim{b} }

// brokerShim stands in for the administrative methods the broker does
// not have yet: empty lists, nothing found.
type brokerShim struct{ *broker.Broker }

func (brokerShim) Clients(broker.ClientQuery) ([]broker.ClientInfo, int) { return nil, 0 }
func (brokerShim) Client(string) (broker.ClientInfo, []broker.SubscriptionInfo, error) {
	return broker.ClientInfo{}, nil, broker.ErrNoSession
}
func (brokerShim) Disconnect(string) error    { return broker.ErrNoSession }
func (brokerShim) DeleteSession(string) error { return broker.ErrNoSession }
func (brokerShim) Subscriptions(broker.SubscriptionQuery) ([]broker.SubscriptionInfo, int) {
	return nil, 0
}
func (brokerShim) Retained(string, int, int) ([]*broker.Message, int, error) { return nil, 0, nil }
func (brokerShim) RetainedMessage(string) (*broker.Message, error) {
	return nil, broker.ErrNoRetained
}
func (brokerShim) DeleteRetained(string) error { return broker.ErrNoRetained }
