// Package cluster joins Tern nodes into one MQTT broker over NATS: either
// a nats-server embedded in each node (joined to the others by routes,
// with JetStream) or an existing NATS cluster. Nothing here is a consensus
// or membership protocol of its own: NATS routes the traffic and JetStream
// keeps the state every node must agree on.
//
//   - Sessions (OpenStore): every node's persistent sessions are in one
//     replicated store (store/jetstream), so a session outlives its node.
//   - QoS 1 and 2 messages go into one replicated stream before they are
//     acknowledged; every node reads it in order with one consumer and
//     routes each message to its sessions, its reading position (cursor)
//     committed atomically with what it queued (stream.go). A session that
//     moves to another node, or whose node died, resumes there from the
//     store plus the messages after the old node's cursor.
//   - QoS 0: a node subscribes on NATS to the subjects of its clients'
//     filters (Subject, FilterSubjects), so a publish travels only to nodes
//     with matching interest, at most once; a local subscriber never waits
//     on NATS.
//   - Shared subscriptions: every member holds a NATS queue subscription in
//     a queue group named after its share group, so each message goes to one
//     member cluster-wide, picked uniformly among members.
//   - Client ids: a JetStream key-value bucket names the node that owns each
//     client id; a connect takes it over with compare-and-set, and the
//     previous owner closes its connection and lets go of the session.
//   - Retained messages: a JetStream stream keeps the last message per
//     topic; every node follows it and keeps a full local copy.
package cluster
