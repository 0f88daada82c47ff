// Package jsstore is a store.Store kept in JetStream, replicated across a
// NATS cluster: the store behind a cluster whose persistent sessions must
// survive the loss of a node. (The directory is store/jetstream; the
// package is named jsstore so that it does not shadow nats.go's jetstream.)
//
// # Where state lives
//
// Everything is in one key-value bucket (a JetStream stream named
// KV_<bucket>, subjects $KV.<bucket>.>, one message kept per key), so the
// usual key-value tools can inspect it. Keys:
//
//	s.<client>                   session; its value names the session's generation
//	p.<client>.<gen>.u.<filter>  subscription
//	p.<client>.<gen>.o.<seq>     outbound message: state, packet id, and the id of its message
//	p.<client>.<gen>.q.<id>      inbound QoS 2 packet id; its value, the token (store.Inbound)
//	m.<node>.<instance>.<n>      an application message, stored once
//	r.<topic>                    retained message (unless Options.NoRetained)
//
// Client ids, filters and topics are base64url-encoded tokens (hashed
// when long; the value carries the original). A deleted key is a KV
// delete marker (KV-Operation: DEL), which replaces the value (one
// message is kept per key) and expires after Options.MarkerTTL, so that
// deletes leave nothing behind.
//
// No JetStream consumer exists per session: a session is a handful of
// small records, and a million sessions cost records, not consumers. Load
// and LoadSession read the bucket with one short-lived ordered consumer.
//
// # Messages stored once
//
// PutOutbound of the same *store.Message for many sessions writes the
// message once, under a new m.* key, and then one small outbound record
// per session naming it; changing an outbound's state or packet id
// rewrites only that record. The store counts, in memory, the references
// to each message it wrote or loaded, and deletes a message when its count
// reaches zero. A count is only trusted when it is complete: for messages
// this store wrote, or learned of from Load (which sees every session).
// A message learned of through LoadSession (a session taken over from
// another node), or referenced by a session this store Released to
// another node, may be referenced by sessions this store does not know,
// so its count reaching zero only forgets it. Counts are not stored:
// Load rebuilds them from the outbound records, and sweeps what is left
// over (so does Sweep, for a node that runs long): messages no outbound
// record references that an earlier run of this node wrote, or that are
// older than Options.SweepAfter. The same sweep removes the records of
// deleted or superseded session generations that the store did not get to
// purge (a crash). A message is thus never deleted while a record names
// it; one may outlive its last reference until a sweep. Node names must
// be unique in a cluster: a sweep takes a message of this node's name
// from another run as dead.
//
// # Generations
//
// A session's records live under a generation chosen when the store first
// writes the session (or after DeleteSession). DeleteSession is then one
// write, the session key's delete marker, ordered with every other write;
// the old generation's records are purged from the stream in the
// background once the delete is acknowledged, and Load ignores (and in
// time sweeps) records of a generation the session record does not name.
// A store writes a session under the generation it knows: write a session
// another store wrote only after LoadSession (or Load).
//
// # Tickets, ordering and atomicity
//
// Writes gather in a pending group, as in the Pebble store's group
// commit; a committer goroutine takes the group (never in the middle of
// an Atomic) and publishes it on one connection, in submission order. A
// ticket is acknowledged once every write up to it has its JetStream
// acknowledgement, which with R>1 means stored by a quorum.
//
// Writes inside Atomic, and the writes between concurrent atomic groups
// of the same group, are published as JetStream atomic batches
// (Nats-Batch-Id; the stream allows atomic publish, nats-server 2.12 or
// later): all or nothing. A batch holds at most Options.MaxBatch messages
// (the server's max_batch_size, 1000 by default); a larger atomic group
// is split and is then atomic only per part (logged). While a batch is on
// its way the next group gathers, so concurrent atomic groups share
// batches. Other writes go one by one, pipelined, up to
// Options.MaxInflight unacknowledged; Options.Batching can make every
// group a batch instead (one acknowledgement per group, and the batch
// headers stored with each write).
//
// Every write sets a key to a value or deletes it: resending a suffix of
// the writes in order leaves the same state whether or not some of them
// had already been stored. So when a write is not acknowledged (no
// responders or no answer while a stream leader is elected, a lost
// connection) the store resends everything unacknowledged, from the
// oldest, with backoff. A write still unacknowledged after
// Options.WriteTimeout fails the store: Wait returns the error and every
// later write is refused, as store.Store requires. Losing a majority of
// the stream's replicas thus ends in refusals, never in silent
// acceptance.
//
// # Durability
//
// An acknowledgement means the write is in the stream's log on a quorum
// of its replicas: with three, losing one server (and its disk) loses
// nothing acknowledged. nats-server does not fsync every write by default
// (jetstream sync_interval, 2 min): with one replica, surviving a power
// loss (not only a killed process) needs sync_interval: always on the
// server, the counterpart of the Pebble store's sync level.
package jsstore
