package packet

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

// Checks [MQTT-2.2.1-2] [MQTT-2.3.1-5] [MQTT-3.1.3-1].
func TestRoundTrip(t *testing.T) {
	for _, v := range versions {
		for _, s := range samples(v) {
			t.Run(fmt.Sprintf("v%d/%s", v, s.name), func(t *testing.T) {
				b := enc(t, s.p, v)

				got, n, err := DecodeBytes(b, v, 0)
				if err != nil {
					t.Fatalf("DecodeBytes(% x): %v", b, err)
				}
				if n != len(b) {
					t.Errorf("DecodeBytes consumed %d of %d bytes", n, len(b))
				}
				if !reflect.DeepEqual(got, s.p) {
					t.Errorf("DecodeBytes:\n got %#v\nwant %#v", got, s.p)
				}

				got, err = ReadPacket(bufio.NewReader(bytes.NewReader(b)), v, uint32(len(b)))
				if err != nil {
					t.Fatalf("ReadPacket: %v", err)
				}
				if !reflect.DeepEqual(got, s.p) {
					t.Errorf("ReadPacket:\n got %#v\nwant %#v", got, s.p)
				}

				// Append extends dst and leaves what was there.
				prefix := []byte("xyz")
				b2, err := s.p.Append(prefix, v)
				if err != nil || !bytes.Equal(b2[:3], prefix) || !bytes.Equal(b2[3:], b) {
					t.Errorf("Append with a prefix: % x, %v", b2, err)
				}

				if p, ok := s.p.(*Publish); ok && p.Size(v) != len(b) {
					t.Errorf("Size = %d, Append wrote %d", p.Size(v), len(b))
				}
				// Before CONNECT (version 0) a CONNECT decodes by its own level.
				if _, ok := s.p.(*Connect); ok {
					got, _, err := DecodeBytes(b, 0, 0)
					if err != nil || !reflect.DeepEqual(got, s.p) {
						t.Errorf("DecodeBytes with version 0: %#v, %v", got, err)
					}
				}
			})
		}
	}
}

// TestRoundTripDropsWhatVersionCannotCarry checks that v5-only fields are
// left out (not an error) before v5.
func TestRoundTripDropsWhatVersionCannotCarry(t *testing.T) {
	props := propsWith(specAck...)
	cases := []struct {
		in, want Packet
	}{
		{&Puback{PacketID: 3, ReasonCode: QuotaExceeded, Properties: props}, &Puback{PacketID: 3}},
		{&Pubrel{PacketID: 3, ReasonCode: PacketIDNotFound, Properties: props}, &Pubrel{PacketID: 3}},
		{&Publish{QoS: 1, PacketID: 2, Topic: "t", Properties: propsWith(specPublish...)}, &Publish{QoS: 1, PacketID: 2, Topic: "t"}},
		{&Publish{Topic: "t", PacketID: 9}, &Publish{Topic: "t"}}, // no packet id at QoS 0
		{&Disconnect{ReasonCode: ServerBusy, Properties: propsWith(specDisconnect...)}, &Disconnect{}},
		{&Unsuback{PacketID: 4, ReasonCodes: []ReasonCode{Success}, Properties: props}, &Unsuback{PacketID: 4}},
		{&Subscribe{PacketID: 5, Subscriptions: []Subscription{{Filter: "f", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}},
			&Subscribe{PacketID: 5, Subscriptions: []Subscription{{Filter: "f", QoS: 1}}}},
		{&Connack{SessionPresent: true, ReasonCode: 0, Properties: propsWith(specConnack...)}, &Connack{SessionPresent: true}},
		{&Connect{ProtocolLevel: 4, ClientID: "c", Properties: propsWith(specConnect...),
			Will: &Will{Topic: "w", Properties: propsWith(specWill...)}},
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "c", Will: &Will{Topic: "w"}}},
	}
	for _, c := range cases {
		t.Run(c.in.Type().String(), func(t *testing.T) {
			got, _, err := DecodeBytes(enc(t, c.in, V311), V311, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

// TestConnectDefaults checks the protocol name chosen when it is empty and
// the level taken from version when ProtocolLevel is 0.
func TestConnectDefaults(t *testing.T) {
	for _, c := range []struct {
		p    Connect
		v    byte
		want string
	}{
		{Connect{ProtocolLevel: 3}, 5, "MQIsdp"},
		{Connect{ProtocolLevel: 4}, 5, "MQTT"},
		{Connect{ProtocolLevel: 5}, 4, "MQTT"},
		{Connect{}, 3, "MQIsdp"},
		{Connect{}, 5, "MQTT"},
	} {
		got, _, err := DecodeBytes(enc(t, &c.p, c.v), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := c.p
		want.ProtocolName = c.want
		if want.ProtocolLevel == 0 {
			want.ProtocolLevel = c.v
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("%+v v%d: got %#v", c.p, c.v, got)
		}
	}
}
