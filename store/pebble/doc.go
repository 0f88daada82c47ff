// Package pebble is the durable default store.Store, kept in a Pebble
// database (an LSM tree with a write-ahead log).
//
// Writes are group-committed: each returns at once with a ticket, and one
// committer goroutine writes everything submitted meanwhile as one batch
// with one fsync. Durability is a level: Sync (the default) fsyncs every
// group, Batch fsyncs on an interval, None leaves it to the OS.
//
// A message queued for many sessions is stored once: its outbound records
// refer to one body, deleted with the last of them, and a change of state
// rewrites only the small record. A message for one session stays inline
// in its record (bodies.go).
//
// Every value carries a CRC-32C and a format version. Load skips, reports
// and deletes records that fail either check, so a damaged store yields
// what is valid rather than wrong state.
package pebble
