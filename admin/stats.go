package admin

import "github.com/ternmq/tern/broker"

// This file is the one place that reads broker.Stats' fields: the REST
// API and the metrics both see the counters through statsView.

// statsJSON is broker.Stats as GET /api/v1/stats shows it.
type statsJSON struct {
	Connections         int64       `json:"connections"`
	ConnectionsMax      int64       `json:"connections_max"`
	ConnectionsTotal    int64       `json:"connections_total"`
	Sessions            int64       `json:"sessions"`
	SessionsExpired     int64       `json:"sessions_expired"`
	Subscriptions       int64       `json:"subscriptions"`
	Retained            int64       `json:"retained"`
	RetainedBytes       int64       `json:"retained_bytes"`
	MessagesReceived    int64       `json:"messages_received"`
	MessagesSent        int64       `json:"messages_sent"`
	MessagesReceivedQoS [3]int64    `json:"messages_received_qos"`
	MessagesSentQoS     [3]int64    `json:"messages_sent_qos"`
	BytesReceived       int64       `json:"bytes_received"`
	BytesSent           int64       `json:"bytes_sent"`
	Queued              int64       `json:"queued"`
	Inflight            int64       `json:"inflight"`
	Kicked              int64       `json:"kicked"`
	AuthFailures        int64       `json:"auth_failures"`
	RefusedConnects     refusedJSON `json:"refused_connects"`
	Dropped             droppedJSON `json:"dropped"`
}

type refusedJSON struct {
	BadCredentials    int64 `json:"bad_credentials"`
	NotAuthorized     int64 `json:"not_authorized"`
	ClientIDRejected  int64 `json:"client_id_rejected"`
	ProtocolVersion   int64 `json:"protocol_version"`
	ServerUnavailable int64 `json:"server_unavailable"`
	ConnectSize       int64 `json:"connect_size"`
	PreAuthMemory     int64 `json:"preauth_memory"`
	ConnectionLimit   int64 `json:"connection_limit"`
	KeepAlive         int64 `json:"keep_alive"`
	Other             int64 `json:"other"`
}

type droppedJSON struct {
	QueueFull      int64 `json:"queue_full"`
	Slow           int64 `json:"slow"`
	Expired        int64 `json:"expired"`
	NotAuthorized  int64 `json:"not_authorized"`
	NoSharedMember int64 `json:"no_shared_member"`
	TooLarge       int64 `json:"too_large"`
	RetainedFull   int64 `json:"retained_full"`
	QueueRefused   int64 `json:"queue_refused"`
}

// statsView maps the broker's counters to the admin server's view.
func statsView(s broker.Stats) statsJSON {
	r, d := s.RefusedConnects, s.Dropped
	return statsJSON{
		Connections:         s.Connections,
		ConnectionsMax:      s.ConnectionsMax,
		ConnectionsTotal:    s.ConnectionsTotal,
		Sessions:            s.Sessions,
		SessionsExpired:     s.SessionsExpired,
		Subscriptions:       s.Subscriptions,
		Retained:            s.Retained,
		RetainedBytes:       s.RetainedBytes,
		MessagesReceived:    s.MessagesIn,
		MessagesSent:        s.MessagesOut,
		MessagesReceivedQoS: s.MessagesReceivedQoS,
		MessagesSentQoS:     s.MessagesSentQoS,
		BytesReceived:       s.BytesReceived,
		BytesSent:           s.BytesSent,
		Queued:              s.Queued,
		Inflight:            s.Inflight,
		Kicked:              s.Kicked,
		AuthFailures:        s.AuthFailures,
		RefusedConnects: refusedJSON{
			BadCredentials:    r.BadCredentials,
			NotAuthorized:     r.NotAuthorized,
			ClientIDRejected:  r.ClientIDRejected,
			ProtocolVersion:   r.ProtocolVersion,
			ServerUnavailable: r.ServerUnavailable,
			ConnectSize:       r.ConnectSize,
			PreAuthMemory:     r.PreAuthMemory,
			ConnectionLimit:   r.ConnectionLimit,
			KeepAlive:         r.KeepAlive,
			Other:             r.Other,
		},
		Dropped: droppedJSON{
			QueueFull:      d.QueueFull,
			Slow:           d.Slow,
			Expired:        d.Expired,
			NotAuthorized:  d.NotAuthorized,
			NoSharedMember: d.NoSharedMember,
			TooLarge:       d.TooLarge,
			RetainedFull:   d.RetainedFull,
			QueueRefused:   d.QueueRefused,
		},
	}
}

// The label values of tern_refused_connections_total{reason} and
// tern_dropped_messages_total{reason}, in the order of the structs.
func (r refusedJSON) byReason() []labeled {
	return []labeled{{"bad_credentials", r.BadCredentials}, {"not_authorized", r.NotAuthorized},
		{"client_id_rejected", r.ClientIDRejected}, {"protocol_version", r.ProtocolVersion},
		{"server_unavailable", r.ServerUnavailable}, {"connect_size", r.ConnectSize},
		{"preauth_memory", r.PreAuthMemory}, {"connection_limit", r.ConnectionLimit},
		{"keep_alive", r.KeepAlive}, {"other", r.Other}}
}

func (d droppedJSON) byReason() []labeled {
	return []labeled{{"queue_full", d.QueueFull}, {"slow", d.Slow}, {"expired", d.Expired},
		{"not_authorized", d.NotAuthorized}, {"no_shared_member", d.NoSharedMember},
		{"too_large", d.TooLarge}, {"retained_full", d.RetainedFull}, {"queue_refused", d.QueueRefused}}
}

type labeled struct {
	label string
	value int64
}
