// Package client is an MQTT client for protocol levels 3.1, 3.1.1 and 5.0:
// one connection, opened by Connect over TCP or over a net.Conn that
// Options.Dial supplies (TLS, WebSocket, net.Pipe in tests).
//
// A Client is safe for concurrent use. Publish, Subscribe and Unsubscribe
// block until their flow is complete (PUBACK, PUBCOMP, SUBACK, UNSUBACK) or
// the context ends; flows left by a cancelled context still finish in the
// background, and their packet identifier stays in use until they do.
//
// Inside a Client:
//
//   - One reader goroutine decodes every packet and answers the server's
//     flow packets (PUBREL to PUBREC, PUBCOMP to PUBREL) itself, so that a
//     caller who stopped waiting never stalls a flow.
//   - Writes from every goroutine are coalesced: packets sent while a write
//     is in progress go out together in the next one.
//   - Received messages are handed to Options.OnMessage in order, from one
//     delivery goroutine fed by an unbounded queue, so a handler may itself
//     publish or subscribe without deadlocking the reader. QoS 1 and 2
//     messages are acknowledged when the handler returns.
//   - A keep-alive goroutine sends PINGREQ when nothing was sent for the
//     keep-alive interval and closes the connection when the PINGRESP does
//     not come within another interval.
//
// Connection-level session state (in-flight messages, received QoS 2
// identifiers) lives in memory and ends with the connection; a
// reconnecting client with an offline queue is meant to be built on top.
package client
