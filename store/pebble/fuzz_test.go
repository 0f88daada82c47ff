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
	f.Add(appendOutbound(nil, &store.Outbound{Seq: 7, QoS: 2, SubIDs: []uint32{1}, Message: m})[headerLen:])
	f.Add(appendSubscription(nil, &store.Subscription{SubscriptionID: 3})[headerLen:])
	f.Add(appendRetained(nil, m)[headerLen:])
	f.Fuzz(func(t *testing.T, body []byte) {
		v := seal(append(begin(nil), body...), 0)
		if s, err := decodeSession(v); err == nil {
			again, err := decodeSession(appendSession(nil, &s))
			if err != nil || !reflect.DeepEqual(again, s) {
				t.Fatalf("session round trip: %+v -> %+v, %v", s, again, err)
			}
		}
		if o, err := decodeOutbound(v); err == nil {
			again, err := decodeOutbound(appendOutbound(nil, &o))
			if err != nil || !reflect.DeepEqual(again, o) {
				t.Fatalf("outbound round trip: %+v -> %+v, %v", o, again, err)
			}
		}
		decodeSubscription(v)
		decodeRetained(v)
	})
}
