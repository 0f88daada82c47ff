package listener_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ternmq/tern/listener"
)

// timeout bounds every wait in these tests; none asserts on timing.
const timeout = 5 * time.Second

// open opens cfg's listener (address 127.0.0.1:0 unless set), closed when
// the test ends.
func open(t testing.TB, cfg listener.Config) net.Listener {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	l, err := listener.Listen(cfg)
	if err != nil {
		t.Fatalf("Listen(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// accepted is one result of Accept.
type accepted struct {
	c   net.Conn
	err error
}

// acceptLoop accepts until l closes, sending every result on the returned
// channel; accepted connections are closed when the test ends.
func acceptLoop(t testing.TB, l net.Listener) <-chan accepted {
	t.Helper()
	ch := make(chan accepted, 16)
	go func() {
		for {
			c, err := l.Accept()
			if c != nil {
				t.Cleanup(func() { c.Close() })
			}
			ch <- accepted{c, err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// next waits for the next accepted connection.
func next(t testing.TB, ch <-chan accepted) net.Conn {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("Accept: %v", a.err)
		}
		return a.c
	case <-time.After(timeout):
		t.Fatal("no connection accepted")
		return nil
	}
}

// dialer connects a client to a listener of one kind.
type dialer func(t testing.TB, addr string) (net.Conn, error)

func dialTCP(t testing.TB, addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, timeout)
}

func dialUnix(t testing.TB, addr string) (net.Conn, error) {
	return net.DialTimeout("unix", addr, timeout)
}

// dialTLS connects over TLS; the handshake happens on the first Read or
// Write, as on the server side, so that the two can meet.
func dialTLS(cfg *tls.Config) dialer {
	return func(t testing.TB, addr string) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return nil, err
		}
		return tls.Client(c, cfg), nil
	}
}

// dialWS connects over ws:// (cfg nil) or wss:// offering subprotocols;
// header, if set, is written on the TCP connection first (a PROXY header).
func dialWS(cfg *tls.Config, header []byte, subprotocols ...string) dialer {
	return func(t testing.TB, addr string) (net.Conn, error) {
		scheme := "ws"
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, a)
				if err == nil && header != nil {
					_, err = c.Write(header)
				}
				return c, err
			},
		}
		if cfg != nil {
			scheme = "wss"
			tr.TLSClientConfig = cfg
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, scheme+"://"+addr+"/mqtt", &websocket.DialOptions{
			HTTPClient:   &http.Client{Transport: tr},
			Subprotocols: subprotocols,
		})
		if err != nil {
			if resp != nil && resp.Body != nil {
				body, _ := io.ReadAll(resp.Body)
				return nil, &httpError{status: resp.StatusCode, body: string(body), err: err}
			}
			return nil, err
		}
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}
}

// httpError is a refused WebSocket upgrade.
type httpError struct {
	status int
	body   string
	err    error
}

func (e *httpError) Error() string { return e.err.Error() + ": " + e.body }

// roundTrip sends a line each way between client and server and fails
// unless both arrive intact.
func roundTrip(t testing.TB, client, server net.Conn) {
	t.Helper()
	if err := exchange(client, server, "ping from client\n"); err != nil {
		t.Fatalf("client to server: %v", err)
	}
	if err := exchange(server, client, "pong from server\n"); err != nil {
		t.Fatalf("server to client: %v", err)
	}
}

// exchange writes msg on from and reads it on to.
func exchange(from, to net.Conn, msg string) error {
	deadline := time.Now().Add(timeout)
	from.SetDeadline(deadline)
	to.SetDeadline(deadline)
	defer from.SetDeadline(time.Time{})
	defer to.SetDeadline(time.Time{})
	werr := make(chan error, 1)
	go func() { _, err := io.WriteString(from, msg); werr <- err }()
	got, err := bufio.NewReader(to).ReadString('\n')
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if got != msg {
		return errors.New("got " + got + ", want " + msg)
	}
	return nil
}

// readFails reads from c and returns the error; a read that succeeds is a
// test failure.
func readFails(t testing.TB, c net.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	_, err := c.Read(make([]byte, 64))
	if err == nil {
		t.Fatal("read succeeded; want an error")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read timed out (connection neither refused nor closed): %v", err)
	}
	return err
}

// contains fails the test unless err's text contains want.
func contains(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want one containing %q", err, want)
	}
}

// closeBoth closes the two ends of a connection at once: a WebSocket
// close handshake waits for the peer's answer.
func closeBoth(a, b net.Conn) {
	done := make(chan struct{})
	go func() { a.Close(); close(done) }()
	b.Close()
	<-done
}
