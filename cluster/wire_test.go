package cluster

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	pf := byte(1)
	for _, e := range []*envelope{
		{origin: 1, seq: 1, msg: &store.Message{Topic: "a/b", Payload: []byte("x")}},
		{origin: 1<<63 + 5, seq: 1 << 40, from: "pub", msg: &store.Message{
			Topic: "a.b/ c", Payload: []byte{}, QoS: 2, Retain: true, Expiry: time.Unix(0, 1700000000123456789),
			Properties: packet.Properties{PayloadFormat: &pf, CorrelationData: []byte{}, ContentType: "text/plain",
				ResponseTopic: "r/1", User: []packet.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: ""}}},
		}},
	} {
		got, err := decodeEnvelope(appendEnvelope(nil, e))
		if err != nil {
			t.Fatal(err)
		}
		if !got.msg.Expiry.Equal(e.msg.Expiry) {
			t.Fatalf("expiry %v, want %v", got.msg.Expiry, e.msg.Expiry)
		}
		got.msg.Expiry = e.msg.Expiry
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v %+v\nwant %+v %+v", got, got.msg, e, e.msg)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, &envelope{origin: 7, seq: 3, from: "c", msg: &store.Message{Topic: "t", Payload: []byte("p"), QoS: 1}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		again, err := decodeEnvelope(appendEnvelope(nil, e))
		if err != nil {
			t.Fatalf("re-encoding a decoded message fails: %v", err)
		}
		if again.msg.Topic != e.msg.Topic || !bytes.Equal(again.msg.Payload, e.msg.Payload) || again.seq != e.seq {
			t.Fatal("re-encoding changes the message")
		}
	})
}
