package jsstore

import (
	"reflect"
	"testing"

	"github.com/ternmq/tern/store"
)

// FuzzDecodeRecord: no value read back from the bucket makes a decoder
// panic, and whatever decodes encodes and decodes to the same value.
func FuzzDecodeRecord(f *testing.F) {
	m := &store.Message{Topic: "a/b", Payload: []byte("p"), QoS: 1}
	f.Add(encodeSession(&store.Session{ClientID: "c", Version: 5, Will: m}, "gen"))
	f.Add(encodeOutbound(&store.Outbound{Seq: 7, QoS: 2, SubIDs: []uint32{1}}, "n.i.1"))
	f.Add(encodeSubscription(&store.Subscription{SubscriptionID: 3}))
	f.Add(encodeMessage(m))
	f.Fuzz(func(t *testing.T, v []byte) {
		if s, gen, err := decodeSession(v); err == nil {
			again, gen2, err := decodeSession(encodeSession(&s, gen))
			if err != nil || gen2 != gen || !reflect.DeepEqual(again, s) {
				t.Fatalf("session round trip: %+v -> %+v, %v", s, again, err)
			}
		}
		if o, id, err := decodeOutbound(v); err == nil {
			again, id2, err := decodeOutbound(encodeOutbound(&o, id))
			if err != nil || id2 != id || !reflect.DeepEqual(again, o) {
				t.Fatalf("outbound round trip: %+v -> %+v, %v", o, again, err)
			}
		}
		if s, err := decodeSubscription(v); err == nil {
			if again, err := decodeSubscription(encodeSubscription(&s)); err != nil || again != s {
				t.Fatalf("subscription round trip: %+v -> %+v, %v", s, again, err)
			}
		}
		if m, err := decodeMessage(v); err == nil {
			if again, err := decodeMessage(encodeMessage(m)); err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("message round trip: %+v -> %+v, %v", m, again, err)
			}
		}
		decodeInbound(v)
	})
}

// FuzzParseKey: any key parses without panicking, and the keys the store
// writes parse back into their parts.
func FuzzParseKey(f *testing.F) {
	f.Add("c", "g1", "a/+/#", uint64(7))
	f.Add("", "x", "", uint64(0))
	f.Fuzz(func(t *testing.T, cid, gen, filter string, seq uint64) {
		parseKey(cid)
		parseKey(filter)
		if !validGen(gen) {
			return
		}
		for _, k := range []string{subscriptionKey(cid, gen, filter), outboundKey(cid, gen, seq), inboundKey(cid, gen, uint16(seq))} {
			pk := parseKey(k)
			if pk.kind != kindSessionP || pk.ctok != token(cid) || pk.gen != gen {
				t.Fatalf("%q parsed as %+v", k, pk)
			}
		}
		if pk := parseKey(sessionKey(cid)); pk.kind != kindSession || pk.ctok != token(cid) {
			t.Fatalf("session key parsed as %+v", pk)
		}
	})
}
