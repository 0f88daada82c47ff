// Package pebble is the durable default store.Store, kept in a Pebble
// database (an LSM tree with a write-ahead log).
//
// Writes are group-committed: each returns at once with a ticket, and one
// committer goroutine writes everything submitted meanwhile as one batch
// with one fsync. Durability is a level: Sync (the default) fsyncs every
// group, Batch fsyncs on an interval, None leaves it to the OS.
//
// A message queued for many sessions in one commit is one record: the
// message and its members, a few bytes per session; changes to the
// members (sent, acknowledged) go to the body's log, one small record
// per commit, and the body goes with the last member. A message for one
// session stays inline in its record (bodies.go).
//
// Every value carries a CRC-32C and a format version. Load skips, reports
// and deletes records that fail either check, so a damaged store yields
// what is valid rather than wrong state.
package pebble
