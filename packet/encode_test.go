package packet

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestAppendErrors checks that Append refuses, with an error and dst
// unchanged, what it cannot encode or what the peer would reject as malformed.
func TestAppendErrors(t *testing.T) {
	long := strings.Repeat("a", 65536)
	cases := []struct {
		name string
		p    Packet
		v    byte
		want ReasonCode
	}{
		{"topic longer than 65535 bytes", &Publish{Topic: long}, V311, MalformedPacket},
		{"topic not UTF-8", &Publish{Topic: "a\xffb"}, V311, MalformedPacket},
		{"topic with U+0000", &Publish{Topic: "a\x00b"}, V31, MalformedPacket},
		{"topic with surrogate", &Publish{Topic: "\xed\xa0\x80"}, V5, MalformedPacket},
		{"PUBLISH QoS 3", &Publish{Topic: "t", QoS: 3}, V311, MalformedPacket},
		{"PUBLISH DUP at QoS 0", &Publish{Topic: "t", Dup: true}, V311, MalformedPacket},
		{"client id too long", &Connect{ProtocolLevel: 4, ClientID: long}, V311, MalformedPacket},
		{"protocol name not UTF-8", &Connect{ProtocolName: "\xff", ProtocolLevel: 4}, V311, MalformedPacket},
		{"will QoS 3", &Connect{ProtocolLevel: 4, Will: &Will{QoS: 3, Topic: "t"}}, V311, MalformedPacket},
		{"will payload too long", &Connect{ProtocolLevel: 4, Will: &Will{Topic: "t", Payload: make([]byte, 65536)}}, V311, MalformedPacket},
		{"password too long", &Connect{ProtocolLevel: 5, PasswordFlag: true, Password: make([]byte, 65536)}, V5, MalformedPacket},
		{"3.1.1 password without user name", &Connect{ProtocolLevel: 4, PasswordFlag: true}, V311, MalformedPacket},
		{"3.1 password without user name", &Connect{ProtocolLevel: 3, PasswordFlag: true}, V31, MalformedPacket},
		{"user name not UTF-8", &Connect{ProtocolLevel: 4, UsernameFlag: true, Username: "\xc3"}, V311, MalformedPacket},
		{"SUBSCRIBE QoS 3", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "t", QoS: 3}}}, V311, MalformedPacket},
		{"SUBSCRIBE retain handling 3", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "t", RetainHandling: 3}}}, V5, ProtocolError},
		{"SUBSCRIBE filter not UTF-8", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "\xff"}}}, V311, MalformedPacket},
		{"UNSUBSCRIBE filter with U+0000", &Unsubscribe{PacketID: 1, Filters: []string{"\x00"}}, V311, MalformedPacket},
		{"AUTH before v5", &Auth{}, V311, MalformedPacket},
		{"property not allowed", &Puback{Properties: Properties{SessionExpiry: new(uint32(1))}}, V5, MalformedPacket},
		{"two Subscription Identifiers in SUBSCRIBE", &Subscribe{PacketID: 1, Properties: Properties{SubscriptionIDs: []uint32{1, 2}},
			Subscriptions: []Subscription{{Filter: "t"}}}, V5, ProtocolError},
		{"Subscription Identifier too large", &Publish{Topic: "t", Properties: Properties{SubscriptionIDs: []uint32{MaxVarint + 1}}}, V5, MalformedPacket},
		{"Reason String too long", &Disconnect{Properties: Properties{ReasonString: long}}, V5, MalformedPacket},
		{"User Property key not UTF-8", &Pubrel{Properties: Properties{User: []UserProperty{{"\xff", "v"}}}}, V5, MalformedPacket},
		{"Correlation Data too long", &Publish{Topic: "t", Properties: Properties{CorrelationData: make([]byte, 65536)}}, V5, MalformedPacket},
		{"remaining length above 268435455", &Publish{Topic: "t", Payload: make([]byte, MaxVarint)}, V311, PacketTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := c.p.Append(dst, c.v)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !bytes.Equal(got, []byte("keep")) {
				t.Errorf("dst changed on error: %q", got)
			}
			if p, ok := c.p.(*Publish); ok && p.Size(c.v) != -1 {
				t.Errorf("Size = %d, want -1", p.Size(c.v))
			}
		})
	}
}

// TestAppendZeroAlloc checks that encoding into a dst with room allocates
// nothing, for every packet and version.
func TestAppendZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("-race changes allocation counts")
	}
	buf := make([]byte, 0, 4096)
	for _, v := range versions {
		for _, s := range samples(v) {
			n := testing.AllocsPerRun(50, func() {
				if _, err := s.p.Append(buf[:0], v); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("v%d %s: %v allocs per Append", v, s.name, n)
			}
		}
	}
}

// TestAppendGrowsOnce checks that Append grows a too-small dst once, to
// the exact size, instead of growing field by field.
func TestAppendGrowsOnce(t *testing.T) {
	p := &Publish{QoS: 1, PacketID: 1, Topic: strings.Repeat("t", 32), Payload: make([]byte, 64),
		Properties: propsWith(specPublish...)}
	for _, v := range versions {
		n := testing.AllocsPerRun(50, func() {
			if _, err := p.Append(nil, v); err != nil {
				t.Fatal(err)
			}
		})
		if n != 1 && !raceEnabled {
			t.Errorf("v%d: %v allocs appending to nil, want 1", v, n)
		}
	}
}

func ExamplePublish_Append() {
	p := &Publish{QoS: 1, PacketID: 7, Topic: "a/b", Payload: []byte("hi!")}
	b, err := p.Append(nil, V311)
	fmt.Printf("% x %v\n", b, err)
	// Output: 32 0a 00 03 61 2f 62 00 07 68 69 21 <nil>
}
