package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// deafServer accepts one connection, answers its CONNECT and then never
// reads again: a peer whose socket buffers fill up. Both sides' buffers
// are made small, so that they fill fast.
func deafServer(t *testing.T, version byte) (addr string) {
	t.Helper()
	ln := listen(t)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { conn.Close() })
		conn.(*net.TCPConn).SetReadBuffer(4096)
		if _, err := packet.ReadPacket(bufio.NewReader(conn), 0, 0); err != nil {
			return
		}
		b, _ := (&packet.Connack{}).Append(nil, version)
		conn.Write(b)
	}()
	return ln.Addr().String()
}

func smallBufferDial(addr string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.(*net.TCPConn).SetWriteBuffer(4096)
		}
		return c, err
	}
}

// within runs f and fails the test unless it returns within d.
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	ch := async(f)
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
	return nil
}

// Every call returns when its context ends, also while its packet cannot
// be written because the server stopped reading.
func TestCallsReturnWhenContextEndsAgainstDeafPeer(t *testing.T) {
	big := make([]byte, 256<<10)
	ops := []struct {
		name string
		do   func(ctx context.Context, c *Client) error
	}{
		{"publish QoS 0", func(ctx context.Context, c *Client) error {
			return c.Publish(ctx, &packet.Publish{Topic: "t", Payload: big})
		}},
		{"publish QoS 1", func(ctx context.Context, c *Client) error {
			return c.Publish(ctx, &packet.Publish{Topic: "t", QoS: 1, Payload: big})
		}},
		{"publish QoS 2", func(ctx context.Context, c *Client) error {
			return c.Publish(ctx, &packet.Publish{Topic: "t", QoS: 2, Payload: big})
		}},
		{"subscribe", func(ctx context.Context, c *Client) error {
			_, err := c.Subscribe(ctx, packet.Subscription{Filter: "f"})
			return err
		}},
		{"unsubscribe", func(ctx context.Context, c *Client) error {
			_, err := c.Unsubscribe(ctx, "f")
			return err
		}},
	}
	for _, tv := range versions {
		for _, op := range ops {
			t.Run(tv.name+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				addr := deafServer(t, tv.v)
				c := connectTest(t, Options{Dial: smallBufferDial(addr), Version: tv.v, ClientID: "deaf",
					CleanStart: true, KeepAlive: -1, WriteTimeout: -1})
				// Fill the socket buffers: sooner or later a publish cannot
				// be written.
				filled := false
				for range 200 {
					ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					err := within(t, 3*time.Second, "Publish with a 200ms context", func() error {
						return c.Publish(ctx, &packet.Publish{Topic: "t", Payload: big})
					})
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						filled = true
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if !filled {
					t.Fatal("the socket never filled up")
				}
				for range 3 {
					ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					err := within(t, 3*time.Second, op.name+" with a 200ms context", func() error { return op.do(ctx, c) })
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("%s: %v, want the context's error", op.name, err)
					}
				}
				if err := c.Err(); err != nil {
					t.Fatalf("a call's context ended the connection: %v", err)
				}
			})
		}
	}
}

// Options.WriteTimeout bounds a write of a call without a deadline: the
// connection ends and the call returns.
func TestWriteTimeoutEndsConnection(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			addr := deafServer(t, tv.v)
			c := connectTest(t, Options{Dial: smallBufferDial(addr), Version: tv.v, ClientID: "deaf",
				CleanStart: true, KeepAlive: -1, WriteTimeout: 300 * time.Millisecond})
			big := make([]byte, 256<<10)
			err := within(t, 5*time.Second, "publishing to a server that stopped reading", func() error {
				for range 200 {
					if err := c.Publish(context.Background(), &packet.Publish{Topic: "t", Payload: big}); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				t.Fatal("every publish succeeded: the socket never filled up")
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Publish: %v, want a timeout", err)
			}
			waitDone(t, c)
			if c.Err() == nil {
				t.Fatal("Err nil after a write timeout")
			}
		})
	}
}

// Session.Disconnect returns when its context ends, also while the
// DISCONNECT cannot be written.
func TestSessionDisconnectBoundedAgainstDeafPeer(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			addr := deafServer(t, tv.v)
			s := newTestSession(t, SessionOptions{Options: Options{Dial: smallBufferDial(addr), Version: tv.v,
				ClientID: "deaf", KeepAlive: -1, WriteTimeout: -1}})
			big := make([]byte, 256<<10)
			for range 20 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				within(t, 3*time.Second, "Session.Publish", func() error {
					return s.Publish(ctx, &packet.Publish{Topic: "t", Payload: big})
				})
				cancel()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := within(t, 3*time.Second, "Session.Disconnect with a 300ms context", func() error { return s.Disconnect(ctx) })
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Disconnect: %v, want the context's error", err)
			}
			wait(t, s.Done(), "the Session's end")
		})
	}
}
