// Package bridge links the broker to other MQTT brokers: each configured
// bridge forwards messages on chosen topics out to a remote broker, in
// from it, or both, rewriting a topic prefix on the way.
//
// A bridge is two clients of the client package:
//
//   - the local side, an MQTT 5 client of this broker over an in-process
//     pipe (broker.ServeConn), with a persistent session under the client
//     id "$bridge/<name>". It subscribes to local_prefix+pattern of the
//     out and both topics with No Local, so that what the bridge itself
//     publishes locally never comes back to it. While the remote is away
//     the broker queues those messages in that session, durably like any
//     persistent session's (bounded by the bridge's queue settings).
//   - the remote side, a client.Session to the remote URL: it reconnects
//     with backoff and jitter and resumes its session there unless
//     clean_start is set. It subscribes to remote_prefix+pattern of the in
//     and both topics (v5: No Local, Retain As Published).
//
// Both sides acknowledge by hand (client.Options.ManualAck): a message is
// acknowledged to the side it came from only once the other side has
// acknowledged the forwarded copy (PUBACK, PUBCOMP). A crash anywhere
// therefore loses nothing that was acknowledged; the price is that a
// message whose forwarded copy was acknowledged but whose own
// acknowledgement was not sent yet is forwarded again: QoS 1 is at least
// once across the bridge. QoS 2 going out is exactly once while Tern runs
// (the remote restarting included: the remote side resumes its QoS 2
// flows) and at least once around a crash of Tern; coming in it is at
// least once when the connection to the remote is lost between the local
// publish and its acknowledgement.
//
// Loop prevention. Locally, No Local on the bridge's subscriptions. On a
// v5 remote, No Local likewise. A 3.1 or 3.1.1 remote has no No Local: a
// message forwarded out on a topic that an in or both subscription also
// matches comes back; the bridge remembers what it forwarded (topic and
// payload, for a minute, at most 10000 messages) and drops each such
// message once when it returns (counted as Suppressed).
package bridge
