package webhook

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
)

// event is what a hook captures: values only, nothing the broker may
// change later (an auth.Client is never changed in place, and a routed
// message's topic, payload and properties are not either).
type event struct {
	kind    kind
	at      time.Time
	client  *auth.Client // nil: none (message.dropped for no shared member)
	topic   string       // the topic, or the filter of client.(un)subscribed
	qos     byte
	retain  bool
	payload []byte
	user    []packet.UserProperty
	reason  string
}

// wire is an event's JSON; docs/webhooks.md describes it.
type wire struct {
	Event           string         `json:"event"`
	Timestamp       string         `json:"timestamp"`
	Node            string         `json:"node"`
	ClientID        string         `json:"client_id,omitempty"`
	Username        string         `json:"username,omitempty"`
	Address         string         `json:"address,omitempty"`
	ProtocolVersion byte           `json:"protocol_version,omitempty"`
	Filter          string         `json:"filter,omitempty"`
	Topic           string         `json:"topic,omitempty"`
	QoS             *byte          `json:"qos,omitempty"`
	Retain          *bool          `json:"retain,omitempty"`
	Payload         *string        `json:"payload,omitempty"`
	PayloadBase64   *string        `json:"payload_base64,omitempty"`
	UserProperties  []userProperty `json:"user_properties,omitempty"`
	Reason          string         `json:"reason,omitempty"`
}

type userProperty struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// encode returns the JSON array of events.
func encode(node string, events []*event) ([]byte, error) {
	ws := make([]wire, len(events))
	for i, e := range events {
		w := &ws[i]
		w.Event = e.kind.String()
		w.Timestamp = e.at.UTC().Format(time.RFC3339Nano)
		w.Node = node
		if c := e.client; c != nil {
			w.ClientID = c.ClientID
			w.Username = c.Username
			if c.RemoteAddr != nil {
				w.Address = c.RemoteAddr.String()
			}
			if e.kind == kConnected {
				w.ProtocolVersion = c.Version
			}
		}
		w.Reason = e.reason
		switch e.kind {
		case kSubscribed:
			w.Filter, w.QoS = e.topic, &e.qos
		case kUnsubscribed:
			w.Filter = e.topic
		case kPublished, kDropped:
			w.Topic, w.QoS, w.Retain = e.topic, &e.qos, &e.retain
			if utf8.Valid(e.payload) {
				s := string(e.payload)
				w.Payload = &s
			} else {
				s := base64.StdEncoding.EncodeToString(e.payload)
				w.PayloadBase64 = &s
			}
			for _, u := range e.user {
				w.UserProperties = append(w.UserProperties, userProperty(u))
			}
		}
	}
	return json.Marshal(ws)
}
