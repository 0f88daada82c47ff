// Package store is the persistence interface for broker state that must
// outlive a connection: sessions, their subscriptions, queued and in-flight
// outbound messages, inbound QoS 2 packet identifiers, and retained
// messages. The broker's memory is authoritative while it runs; a Store is
// written through before anything is acknowledged and read back on start.
//
// store/memory keeps everything in RAM (tests, --no-persist); durable
// implementations live in their own sub-packages.
package store
