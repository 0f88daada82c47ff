// Package broker is the MQTT server core: connections from CONNECT to
// DISCONNECT, sessions that outlive them, QoS 1 and 2 state machines,
// retained messages, wills, keep-alive and the routing of every PUBLISH to
// the sessions whose subscriptions match it.
//
// # Goroutines
//
// A connection's own goroutine (conn.serve) only waits for input, so that
// an idle connection keeps the smallest stack. Each burst of input is
// handled on a goroutine of its own (conn.burst), one at a time: it reads
// the packets buffered, handles them (routing what the client publishes)
// and exits. A writer goroutine (conn.writeLoop) exists only while there
// is something to write: outgoing packets are appended to the
// connection's buffer and written in bursts, one syscall for many
// packets. A PUBLISH is encoded once per protocol variant and the bytes
// copied to each subscriber.
//
// # Identity and authorization
//
// A connection's identity (auth.Client) is fixed at CONNECT and shared
// with its session, which belongs to that identity: another identity may
// not resume or take it over unless an auth.ConnectAuthorizer grants it
// the client id. Every message that leaves the broker is authorized
// (auth.Read) for the receiving session's identity, outside every lock
// and outside the store's atomic section, since an Authorizer may wait on
// the network.
//
// # Durability
//
// Session writes return their store ticket. An acknowledgement that
// promises something is stored (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK,
// UNSUBACK, CONNACK) waits for the tickets of those writes (conn.after),
// visibly where it is sent. Deliveries do not wait for the store, but for
// a QoS 2 PUBLISH to a persistent session, whose packet id must survive a
// restart.
//
// # Idle connections
//
// A connection whose input is handled parks (poll.go): no goroutine waits
// for it and it holds no read buffer. On Linux a poller of its own, over
// the runtime's network poller, starts a goroutine when input arrives on
// the socket (under TLS too, once TLS has nothing buffered); a
// process-wide keep-alive wheel, a close and a take-over start one too.
// Connections the poller cannot watch (WebSocket, PROXY protocol,
// ServeConn's) keep a goroutine waiting with a one-byte read and no
// buffer. A parked TCP or unix connection also leaves the runtime's
// network poller, whose descriptor costs more than the rest of an idle
// connection's socket (sockconn_linux.go): reads and writes that need not
// wait are system calls of its own, and one that has to wait takes the
// runtime's poller again until the connection has been quiet for a
// while. After a burst of connections the broker returns the memory the
// burst left free (trim.go).
//
// # Ending a connection
//
// closeWith closes at once; finish queues a last packet and closes once
// it is written (finishWith: a v5 DISCONNECT with a reason). A connection
// the broker ends after a last packet (a refusing CONNACK, a DISCONNECT
// with a reason code) closes lingering: half-closed once that packet is
// written, its input drained for at most 2 s and 256 KiB, so that a client
// still sending reads why instead of a reset (linger.go). cleanup runs
// once, on the connection's reading goroutine, whatever ended it: it detaches the
// session, publishes the will and runs the hooks.
package broker
