// Package record is the binary encoding of the values the stores keep
// (store/pebble, store/jetstream): uvarint-prefixed strings and bytes,
// times in Unix nanoseconds, and messages with their v5 properties. Each
// store frames a record its own way (a checksum, a format byte).
package record
