// Package broker is the MQTT server core: connections from CONNECT to
// DISCONNECT, sessions that outlive them, QoS 1 and 2 state machines,
// retained messages, wills, keep-alive and the routing of every PUBLISH to
// the sessions whose subscriptions match it.
//
// Each connection has one reader goroutine, which also routes what its
// client publishes, and a writer goroutine that exists only while there is
// something to write: outgoing packets are appended to the connection's
// buffer and written in bursts, one syscall for many packets. A PUBLISH is
// encoded once per protocol variant and the bytes copied to each subscriber.
//
// A connection the broker ends after a last packet (a refusing CONNACK, a
// DISCONNECT with a reason code) closes lingering: half-closed once that
// packet is written, its input drained for at most 2 s and 256 KiB, so
// that a client still sending reads why instead of a reset (linger.go).
package broker
