package broker_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/internal/testpki"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/packet"
)

// send writes ps in one write. These clients go on sending after the
// broker has decided to close, as real ones do: a write that fails means
// the broker reset the connection, and a client that sees its write fail
// usually gives up without reading what the broker said.
func send(t *testing.T, c *mt.Raw, ps ...packet.Packet) {
	t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.Append(b, c.Version); err != nil {
			t.Fatal(err)
		}
	}
	c.Conn.SetWriteDeadline(time.Now().Add(mt.Timeout))
	if _, err := c.Conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// trailer is what a client still sending has sent beyond the packet the
// broker closes on: more than the broker's read buffer, so that it is
// still unread in the socket when the broker closes.
func trailer() *packet.Publish {
	return &packet.Publish{Topic: "more", Payload: make([]byte, 4096)}
}

// readToEnd reads packets until the connection ends and returns them; the
// end must be an orderly one (EOF), not a reset.
func readToEnd(t *testing.T, c *mt.Raw, answer func(packet.Packet)) []packet.Packet {
	t.Helper()
	var got []packet.Packet
	for {
		p, err := c.ReadWithin(mt.Timeout)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after %d packets %v: %v; want the packets, then EOF", len(got), got, err)
			}
			return got
		}
		got = append(got, p)
		if answer != nil {
			answer(p)
		}
	}
}

// TestLingeringCloseReceiveMaximum: a v5 client sends Receive Maximum + 1
// QoS 2 PUBLISHes and more without reading, then reads, answering each
// PUBREC with PUBREL. Although it is still sending when the broker closes, it finds
// every PUBREC and then DISCONNECT 0x93, not a reset: the broker
// half-closes and drains its input for a while before closing.
// Checks [MQTT-3.3.4-10] [MQTT-4.9.0-3].
func TestLingeringCloseReceiveMaximum(t *testing.T) {
	const max = 5
	b := mt.StartBroker(t, broker.Options{ReceiveMaximum: max})
	c := mt.Dial(t, b.Addr, packet.V5)
	// One write, so that all of it is in the broker's socket before the
	// broker reads the first byte.
	ps := []packet.Packet{&packet.Connect{ProtocolLevel: packet.V5, ClientID: "greedy", CleanStart: true}}
	for i := range max + 1 {
		ps = append(ps, &packet.Publish{Topic: "q2", QoS: 2, PacketID: uint16(i + 1), Payload: []byte("unreleased")})
	}
	send(t, c, append(ps, trailer())...)
	got := readToEnd(t, c, func(p packet.Packet) {
		if rec, ok := p.(*packet.Pubrec); ok {
			send(t, c, &packet.Pubrel{PacketID: rec.PacketID})
		}
	})
	if len(got) != max+2 {
		t.Fatalf("got %d packets %v; want CONNACK, %d PUBRECs, DISCONNECT", len(got), got, max)
	}
	if ack, ok := got[0].(*packet.Connack); !ok || ack.ReasonCode != packet.Success {
		t.Fatalf("first %+v; want CONNACK 0", got[0])
	}
	for i, p := range got[1 : max+1] {
		if rec, ok := p.(*packet.Pubrec); !ok || rec.PacketID != uint16(i+1) {
			t.Fatalf("packet %d: %+v; want PUBREC %d", i+1, p, i+1)
		}
	}
	if d, ok := got[max+1].(*packet.Disconnect); !ok || d.ReasonCode != packet.ReceiveMaximumExceeded {
		t.Fatalf("last %+v; want DISCONNECT 0x93", got[max+1])
	}
}

// TestLingeringCloseRefusedConnect: a client that publishes right behind
// a CONNECT with a bad password, and goes on publishing for a while
// without waiting for the CONNACK, still reads the refusal, then EOF.
// Checks [MQTT-3.1.4-5] [MQTT-3.1.4-6].
func TestLingeringCloseRefusedConnect(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"alice": "secret"})})
		c := mt.Dial(t, b.Addr, v)
		send(t, c, &packet.Connect{ProtocolLevel: v, ClientID: "c", CleanStart: true,
			UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("wrong")}, trailer())
		for range 10 {
			time.Sleep(2 * time.Millisecond)
			send(t, c, trailer())
		}
		got := readToEnd(t, c, nil)
		want := packet.RefusedBadUsernamePassword
		if v == packet.V5 {
			want = packet.BadUsernameOrPassword
		}
		if len(got) != 1 {
			t.Fatalf("got %v; want only the CONNACK", got)
		}
		if ack, ok := got[0].(*packet.Connack); !ok || ack.ReasonCode != want {
			t.Fatalf("got %+v; want CONNACK %#x", got[0], want)
		}
	})
}

// refused connects with a bad password and reads the refusal and the EOF
// of the broker's half-close, leaving its own end open.
func refused(t *testing.T, b *mt.Broker) *mt.Raw {
	t.Helper()
	c := mt.Dial(t, b.Addr, packet.V311)
	send(t, c, &packet.Connect{ProtocolLevel: packet.V311, ClientID: "c", CleanStart: true,
		UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("wrong")})
	if got := readToEnd(t, c, nil); len(got) != 1 {
		t.Fatalf("got %v; want the CONNACK", got)
	}
	return c
}

// writeFails keeps writing n bytes to c every 10ms until a write fails,
// and fails the test unless that happens within d.
func writeFails(t *testing.T, c *mt.Raw, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	b := make([]byte, n)
	for time.Now().Before(deadline) {
		c.Conn.SetWriteDeadline(deadline)
		if _, err := c.Conn.Write(b); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("writes still accepted after %s", d)
}

// The lingering close is bounded: a client that keeps its end open is
// closed on after a while, one that goes on sending sooner, and a broker
// shutting down does not wait for either.
func TestLingeringCloseBounds(t *testing.T) {
	opts := broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"alice": "secret"})}
	t.Run("time", func(t *testing.T) {
		c := refused(t, mt.StartBroker(t, opts))
		start := time.Now()
		writeFails(t, c, 100, 5*time.Second)
		if d := time.Since(start); d < time.Second {
			t.Fatalf("closed after %s; want a lingering close of about 2s", d)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		c := refused(t, mt.StartBroker(t, opts))
		start := time.Now()
		c.Conn.SetWriteDeadline(time.Now().Add(mt.Timeout))
		c.Conn.Write(make([]byte, 1<<20)) // more than lingerBytes
		writeFails(t, c, 100, time.Second)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("closed after %s; want the byte bound to close it before the time bound", d)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		b := mt.StartBroker(t, opts)
		refused(t, b)
		time.Sleep(50 * time.Millisecond) // into the drain
		start := time.Now()
		b.Close()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Close took %s; want it to cut the lingering close short", d)
		}
	})
}

// Every listener kind that can half-close lingers: the refused client of
// TestLingeringCloseRefusedConnect reads its CONNACK over TLS, the PROXY
// protocol and unix sockets too.
func TestLingeringCloseListeners(t *testing.T) {
	pki := testpki.New(t, "linger")
	srv := pki.Server("server", "localhost")
	tlsCfg := pki.ClientConfig()
	tlsCfg.ServerName = "localhost"
	for _, tc := range []struct {
		name string
		cfg  listener.Config
		dial func(addr string) (net.Conn, error)
	}{
		{"tls", listener.Config{Type: "tls", TLS: listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}},
			func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, tlsCfg) }},
		{"proxy", listener.Config{Type: "tcp", ProxyProtocol: true},
			func(addr string) (net.Conn, error) {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					_, err = c.Write([]byte("PROXY TCP4 192.0.2.7 192.0.2.1 41234 1883\r\n"))
				}
				return c, err
			}},
		{"unix", listener.Config{Type: "unix", Address: filepath.Join(t.TempDir(), "s")},
			func(addr string) (net.Conn, error) { return net.Dial("unix", addr) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Address == "" {
				tc.cfg.Address = "127.0.0.1:0"
			}
			ln, err := listener.Listen(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			b, err := broker.New(broker.Options{
				Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
				Authenticator: auth.NewStatic(false, map[string]string{"alice": "secret"}),
			})
			if err != nil {
				t.Fatal(err)
			}
			go b.Serve(ln)
			t.Cleanup(func() { b.Close() })
			nc, err := tc.dial(ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := mt.Wrap(t, nc, packet.V5)
			send(t, c, &packet.Connect{ProtocolLevel: packet.V5, ClientID: "c", CleanStart: true,
				UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("wrong")}, trailer())
			for range 10 {
				time.Sleep(2 * time.Millisecond)
				send(t, c, trailer())
			}
			got := readToEnd(t, c, nil)
			if len(got) != 1 {
				t.Fatalf("got %v; want only the CONNACK", got)
			}
			if ack, ok := got[0].(*packet.Connack); !ok || ack.ReasonCode != packet.BadUsernameOrPassword {
				t.Fatalf("got %+v; want CONNACK 0x86", got[0])
			}
		})
	}
}
