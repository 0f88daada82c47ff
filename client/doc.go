// Package client is an MQTT client for protocol levels 3.1, 3.1.1 and 5.0,
// in two layers:
//
//   - Client is one connection, opened by Connect: over TCP to
//     Options.Address, to a URL (Options.URL: tcp://, tls://, ws://,
//     wss://; see DialURL), or over a net.Conn that Options.Dial supplies.
//   - Session is built on Client: it connects in the background,
//     reconnects with exponential backoff and jitter, resumes the session,
//     queues publishes while offline (in memory, or on disk with a Store)
//     and renews subscriptions when the server lost the session.
//
// Both are safe for concurrent use. Publish, Subscribe and Unsubscribe
// block until their flow is complete (PUBACK, PUBCOMP, SUBACK, UNSUBACK) or
// the context ends; flows left by a cancelled context still finish in the
// background, and their packet identifier stays in use until they do.
//
// Received messages go to the Handler registered for a matching filter
// with SubscribeFunc (a Router; "$share/group/f" matches what f matches),
// else to Options.OnMessage; all from one delivery goroutine per
// connection, in the order they arrived. For MQTT 5, user properties and
// the other message properties are in packet.Publish.Properties both
// ways; Request and NewResponse implement request/response (Response
// Topic, Correlation Data); and topics published repeatedly get Topic
// Aliases within the server's Topic Alias Maximum (Options.NoTopicAliases
// turns that off), set up again on each new connection.
//
// Inside a Client:
//
//   - One reader goroutine decodes every packet and answers the server's
//     flow packets (PUBREL to PUBREC, PUBCOMP to PUBREL) itself, so that a
//     caller who stopped waiting never stalls a flow.
//   - Writes from every goroutine are coalesced: packets sent while a write
//     is in progress go out together in the next one. Topic aliases are
//     assigned under the writer's lock, so that a packet setting up an
//     alias always precedes the packets using it. A caller whose context
//     ends stops waiting for its write (what it had not written goes
//     first in the next one), and Options.WriteTimeout ends a connection
//     whose writes do not complete, so that a server that stops reading
//     holds no call past its context.
//   - Received messages are handed to the handlers in order, from one
//     delivery goroutine fed by a bounded queue, the inbox
//     (Options.InboxSize messages, Options.InboxBytes bytes). When it is
//     full the reader stops reading the connection, so that TCP slows the
//     server down; nothing is dropped. While a publish, subscribe or
//     unsubscribe awaits the server's answer the reader reads on, up to
//     InboxBytes, so a handler may itself publish or subscribe and wait
//     without deadlocking the reader. A v5 CONNECT announces InboxSize as
//     Receive Maximum. QoS 1 and 2 messages are acknowledged when the
//     handler returns, or with Options.ManualAck when the application
//     calls Ack; acknowledgements leave in the order the messages came.
//   - A keep-alive goroutine sends PINGREQ when nothing was sent for the
//     keep-alive interval and closes the connection when the PINGRESP does
//     not come within another interval.
//
// A Client's session state (in-flight messages, received QoS 2
// identifiers) ends with its connection. A Session carries it from one
// connection to the next: its queue holds every unfinished publish in
// order, each with its packet identifier and QoS 2 progress; a new
// connection reserves those identifiers, sends the queue again from the
// start (DUP and the same identifier for what was sent, PUBREL for what
// had reached it) and then what is new; and it inherits the received QoS
// 2 identifiers, so that a message the server sends again is acknowledged
// but not delivered twice. With a Store, the Session's writes to it go
// through one goroutine of their own, in order and grouped, so that
// neither the reader nor the Session's lock waits for the disk; a QoS 2
// message's packet identifier and PUBREC are durable before the PUBLISH
// and the PUBREL that depend on them go out.
//
// # Coming from paho
//
// From paho.golang (MQTT 5) and its autopaho, and from paho.mqtt.golang
// (3.1.1):
//
//   - autopaho.ConnectionManager is Session: it connects in the
//     background, reconnects with backoff and renews subscriptions. Its
//     ServerUrls are SessionOptions.Servers (failover in turn), its
//     ConnectPacketBuilder or paho.mqtt.golang's CredentialsProvider is
//     SessionOptions.BeforeConnect, OnConnectionUp is OnConnect,
//     OnConnectError is OnConnectError. AwaitConnection is
//     AwaitConnection. paho.mqtt.golang's AutoReconnect and
//     ConnectRetry are what a Session always does.
//   - paho.Client (paho.golang) and a paho.mqtt.golang Client without
//     AutoReconnect are Client: one connection, ended by Disconnect or
//     Close; Done and Err tell when and why it ended.
//   - Publish, Subscribe and Unsubscribe block until their flow completes
//     or the context ends, and return the outcome, v5 reason codes as a
//     *ReasonError; there are no Tokens to Wait on. A Session's Publish
//     waits across reconnects and queues while offline (paho.mqtt.golang's
//     store, autopaho's queue; Store is the on-disk one). A refused
//     subscription is a *SubscribeError.
//   - CleanStart (paho.mqtt.golang's CleanSession) is false by default
//     here; paho.mqtt.golang defaults CleanSession to true. For v5, set
//     Properties.SessionExpiry for the server to keep the session.
//   - KeepAlive is a time.Duration (paho.golang: uint16 seconds;
//     paho.mqtt.golang's SetKeepAlive takes a Duration too): write
//     30 * time.Second; a value under 1 s is refused. WriteTimeout and
//     ConnectTimeout are Durations as well.
//   - Handlers: SubscribeFunc registers the handler with the filter (paho
//     Router / AddRoute, paho.mqtt.golang's callback argument); the rest go
//     to OnMessage (DefaultPublishHandler, OnPublishReceived). Messages
//     are delivered in order from one goroutine per connection (as
//     paho.mqtt.golang's OrderMatters true), and a handler may publish,
//     subscribe and wait. QoS 1/2 messages are acknowledged when the
//     handler returns, or with ManualAck when Ack is called (paho's
//     EnableManualAcknowledgement, paho.mqtt.golang's SetAutoAckDisabled).
//   - Request and NewResponse are paho.golang's rpc extension; Trace is
//     its debug logger, Options.Logger a log/slog one. Options.Auth
//     (SCRAM, or an Authenticator of your own) is paho.golang's
//     Auther, and Client.Reauthenticate its Authenticate.
package client
