package broker

import (
	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// Message is an application message as the broker routes it.
type Message = store.Message

// OnConnect is called after a client's CONNECT has been accepted.
type OnConnect interface {
	OnConnect(c *auth.Client)
}

// OnDisconnect is called when a connected client's connection ends; err is
// nil after a DISCONNECT from the client.
type OnDisconnect interface {
	OnDisconnect(c *auth.Client, err error)
}

// OnPublish is called for every PUBLISH a client sends, after
// authorization and before routing. Returning an error drops the message.
type OnPublish interface {
	OnPublish(c *auth.Client, m *Message) error
}

// OnSubscribe is called for each subscription a SUBSCRIBE adds or
// replaces, once granted (sub.QoS is the QoS granted) and before SUBACK.
// It runs on the subscriber's connection and must return at once.
type OnSubscribe interface {
	OnSubscribe(c *auth.Client, sub packet.Subscription)
}

// OnUnsubscribe is called for each subscription an UNSUBSCRIBE removes
// (not for filters the session did not hold).
type OnUnsubscribe interface {
	OnUnsubscribe(c *auth.Client, filter string)
}

// OnDrop is called for a message the broker did not deliver to a
// subscriber, once for each count in Stats().Dropped but those of the
// retained set (RetainedFull, retained messages expiring): to is the
// subscriber's identity, nil for NoSharedMember. It is called with
// session and connection locks held, on the delivery path: it must
// return at once, must not call into the Broker, and must not modify m.
type OnDrop interface {
	OnDrop(to *auth.Client, m *Message, reason DropReason)
}

// DropReason says why a message was not delivered; the values match the
// fields of DroppedCounts.
type DropReason uint8

const (
	DropQueueFull      DropReason = iota + 1 // DroppedCounts.QueueFull
	DropSlow                                 // DroppedCounts.Slow
	DropExpired                              // DroppedCounts.Expired
	DropNotAuthorized                        // DroppedCounts.NotAuthorized
	DropNoSharedMember                       // DroppedCounts.NoSharedMember
	DropTooLarge                             // DroppedCounts.TooLarge
	DropQueueRefused                         // DroppedCounts.QueueRefused
)

var dropReasons = [...]string{"", "queue_full", "slow", "expired", "not_authorized",
	"no_shared_member", "too_large", "queue_refused"}

// String returns the reason in snake case ("queue_full"), as webhooks
// and logs name it.
func (r DropReason) String() string {
	if int(r) < len(dropReasons) && r != 0 {
		return dropReasons[r]
	}
	return "unknown"
}

type hooks struct {
	connect     []OnConnect
	disconnect  []OnDisconnect
	publish     []OnPublish
	subscribe   []OnSubscribe
	unsubscribe []OnUnsubscribe
	drop        []OnDrop
}

// dropped counts m as not delivered to to, for r, and tells the OnDrop
// hooks: one call for each count, as OnDrop promises. With no hook
// registered it costs the count and a length check.
func (b *Broker) dropped(to *auth.Client, m *Message, r DropReason) {
	b.stats.dropCounter(r).Add(1)
	for _, d := range b.hooks.drop {
		d.OnDrop(to, m, r)
	}
}

func sortHooks(hs []any) hooks {
	var h hooks
	for _, x := range hs {
		if v, ok := x.(OnConnect); ok {
			h.connect = append(h.connect, v)
		}
		if v, ok := x.(OnDisconnect); ok {
			h.disconnect = append(h.disconnect, v)
		}
		if v, ok := x.(OnPublish); ok {
			h.publish = append(h.publish, v)
		}
		if v, ok := x.(OnSubscribe); ok {
			h.subscribe = append(h.subscribe, v)
		}
		if v, ok := x.(OnUnsubscribe); ok {
			h.unsubscribe = append(h.unsubscribe, v)
		}
		if v, ok := x.(OnDrop); ok {
			h.drop = append(h.drop, v)
		}
	}
	return h
}
