package pebble

import (
	"reflect"
	"testing"

	"github.com/ternmq/tern/store"
)

// FuzzDecodeRecord: no record body read back from disk makes a decoder
// panic, and whatever decodes encodes and decodes to the same value. The
// fuzzer writes bodies; the test seals them, so that they get past the
// checksum to the parser.
func FuzzDecodeRecord(f *testing.F) {
	m := &store.Message{Topic: "a/b", Payload: []byte("p"), QoS: 1}
	f.Add(appendSession(nil, &store.Session{ClientID: "c", Version: 5, Will: m})[headerLen:])
	f.Add(appendOutbound(nil, &store.Outbound{Seq: 7, QoS: 2, SubIDs: []uint32{1}, Message: m}, 0)[headerLen:])
	f.Add(appendOutbound(nil, &store.Outbound{Seq: 7, QoS: 2, SubIDs: []uint32{1}, Message: m}, 1<<40)[headerLen:])
	f.Add(appendOutbound(nil, &store.Outbound{Seq: 8, PacketID: 3, State: store.Released, QoS: 2}, 0)[headerLen:])
	f.Add(appendSubscription(nil, &store.Subscription{SubscriptionID: 3})[headerLen:])
	f.Add(appendMessageRecord(nil, m)[headerLen:])
	f.Fuzz(func(t *testing.T, body []byte) {
		v := seal(append(begin(nil), body...), 0)
		if s, err := decodeSession(v); err == nil {
			again, err := decodeSession(appendSession(nil, &s))
			if err != nil || !reflect.DeepEqual(again, s) {
				t.Fatalf("session round trip: %+v -> %+v, %v", s, again, err)
			}
		}
		if o, ref, err := decodeOutbound(v); err == nil {
			if ref != 0 && o.Message != nil {
				t.Fatalf("outbound with both a reference (%d) and a message", ref)
			}
			again, ref2, err := decodeOutbound(appendOutbound(nil, &o, ref))
			if err != nil || ref2 != ref || !reflect.DeepEqual(again, o) {
				t.Fatalf("outbound round trip: %+v ref %d -> %+v ref %d, %v", o, ref, again, ref2, err)
			}
		}
		if m, err := decodeMessageRecord(v); err == nil {
			again, err := decodeMessageRecord(appendMessageRecord(nil, m))
			if err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("message round trip: %+v -> %+v, %v", m, again, err)
			}
		}
		decodeSubscription(v)
	})
}
