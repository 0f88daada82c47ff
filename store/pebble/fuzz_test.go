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
	var enc memberEncoder
	ents := enc.member(nil, appendHead(nil, &store.Outbound{QoS: 1}), "client-1", 7)
	ents = enc.gone(ents)
	ents = enc.member(ents, appendHead(nil, &store.Outbound{QoS: 2, PacketID: 3, State: store.Sent, SubIDs: []uint32{1}, SharedGroup: "g"}), "client-12", 9)
	f.Add(appendBodyRecord(nil, m, 3, ents)[headerLen:])
	f.Add(appendLogSet(appendLogDelete(nil, 1), 2, &store.Outbound{QoS: 1, PacketID: 4, State: store.Sent}))
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
		if m, n, ents, err := decodeBodyRecord(v); err == nil && validMembers(n, ents) {
			members := decodeMembers(t, n, ents)
			var enc memberEncoder
			var again []byte
			for _, mb := range members {
				if mb.client == "" {
					again = enc.gone(again)
				} else {
					again = enc.member(again, appendHead(nil, &mb.o), mb.client, mb.o.Seq)
				}
			}
			m2, n2, ents2, err := decodeBodyRecord(appendBodyRecord(nil, m, int(n), again))
			if err != nil || n2 != n || !reflect.DeepEqual(m2, m) || !reflect.DeepEqual(decodeMembers(t, n2, ents2), members) {
				t.Fatalf("body round trip: %d members %+v -> %d, %v", n, members, n2, err)
			}
		}
		if d, err := unseal(v); err == nil {
			for len(d.B) > 0 && d.Err == nil {
				var o store.Outbound
				logEntry(&d, &o)
			}
		}
		decodeSubscription(v)
	})
}

type fuzzMember struct {
	client string // "" for a slot that is no member
	o      store.Outbound
}

func decodeMembers(t *testing.T, n uint64, ents []byte) []fuzzMember {
	d := decoder{B: ents}
	md := memberDecoder{d: &d}
	var out []fuzzMember
	for range n {
		var mb fuzzMember
		if md.next(&mb.o) {
			mb.client = string(md.client)
		}
		out = append(out, mb)
	}
	if err := d.Done(); err != nil {
		t.Fatalf("valid members do not decode: %v", err)
	}
	return out
}
