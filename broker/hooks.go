package broker

import (
	"github.com/ternmq/tern/auth"
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

type hooks struct {
	connect    []OnConnect
	disconnect []OnDisconnect
	publish    []OnPublish
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
	}
	return h
}
