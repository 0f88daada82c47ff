package broker

import (
	"errors"
	"time"
)

// What an operator's tools (package admin: REST API, dashboard, $SYS,
// metrics) may see and do, through methods of Broker. None of them
// blocks on a client.

// Errors of the administrative methods; test with errors.Is.
var (
	ErrNoSession    = errors.New("no such client or session")
	ErrConnected    = errors.New("client is connected")
	ErrNotConnected = errors.New("client is not connected")
	ErrNoRetained   = errors.New("no retained message on that topic")
)

// ClientInfo describes one session and its connection, if any.
type ClientInfo struct {
	ClientID        string    `json:"client_id"`
	Username        string    `json:"username"`
	Anonymous       bool      `json:"anonymous"`
	Connected       bool      `json:"connected"`
	Address         string    `json:"address,omitempty"`        // remote address while connected
	ProtocolVersion byte      `json:"protocol_version"`         // 3, 4 or 5
	ConnectedSince  time.Time `json:"connected_since,omitzero"` // while connected
	KeepAlive       int       `json:"keep_alive"`               // seconds, as in force
	Persistent      bool      `json:"persistent"`               // outlives its connection
	ExpiresAt       time.Time `json:"expires_at,omitzero"`      // offline persistent sessions
	Subscriptions   int       `json:"subscriptions"`
	Queued          int       `json:"queued"`   // messages waiting
	Inflight        int       `json:"inflight"` // sent, not yet acknowledged
	BytesReceived   int64     `json:"bytes_received"`
	BytesSent       int64     `json:"bytes_sent"`
}

// ClientQuery selects clients: Search matches client id, username or
// address as a substring (empty: all); Offset and Limit page the result,
// ordered by client id (Limit 0: all).
type ClientQuery struct {
	Search        string
	Offset, Limit int
}

// SubscriptionInfo is one subscription of one session.
type SubscriptionInfo struct {
	ClientID          string `json:"client_id"`
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local"`
	RetainAsPublished bool   `json:"retain_as_published"`
	RetainHandling    byte   `json:"retain_handling"`
	SubscriptionID    uint32 `json:"subscription_id,omitempty"`
}

// SubscriptionQuery selects subscriptions: of one client (ClientID, empty:
// all) whose filter contains Search; paged like ClientQuery, ordered by
// client id then filter.
type SubscriptionQuery struct {
	ClientID, Search string
	Offset, Limit    int
}
