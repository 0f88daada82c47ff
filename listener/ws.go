package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The WebSocket subprotocols MQTT clients offer: "mqtt" for 3.1.1 and 5.0
// ([MQTT-6.0.0-3]), "mqttv3.1" from 3.1 clients.
var wsSubprotocols = []string{"mqtt", "mqttv3.1"}

const (
	// wsHeaderTimeout bounds the TLS handshake and the upgrade request.
	wsHeaderTimeout = 10 * time.Second
	// wsMaxHeaderBytes bounds the upgrade request's headers: browsers send
	// cookies, so not too tight, but every request being read holds this
	// much of a stranger's bytes (nginx allows 4 x 8 KiB by default).
	wsMaxHeaderBytes = 16 << 10
	// wsMaxPending bounds the connections whose upgrade is still being
	// read, per listener: the broker's connection and pre-authentication
	// limits see a connection only once upgraded, so without it a flood
	// of stalled upgrades would cost wsMaxHeaderBytes and buffers each,
	// bounded only by file descriptors. Beyond it a connection is closed
	// at once; about 25 KB each, 25 MiB in all.
	wsMaxPending = 1024
	// wsCloseTimeout bounds closing an upgraded connection: the close
	// handshake, and skipping what is left of a frame being read.
	wsCloseTimeout = 5 * time.Second
)

// wsListener serves MQTT over WebSocket: an http.Server upgrades requests
// for the path and hands each connection, as a net.Conn of binary
// messages, to Accept. An MQTT packet may span messages and a message may
// hold several packets; the broker reads a byte stream either way, so
// NetConn's unlimited message size is right (the broker bounds packets).
type wsListener struct {
	ln        net.Listener // the socket the server serves (TLS for wss)
	srv       *http.Server
	path      string
	origins   []string
	files     *tlsFiles // wss only
	certField string    // TLSConfig.CertUsername (wss only)

	conns chan net.Conn
	done  chan struct{} // closed by Close or when Serve fails

	pending atomic.Int32 // connections not yet upgraded nor closed

	mu       sync.Mutex
	serveErr error       // why Serve stopped, if not Close; mu guards
	stopped  sync.Once   // closes done
	closed   atomic.Bool // Close has been called
}

// wssListener is a wsListener over TLS, whose files can be reloaded.
type wssListener struct{ *wsListener }

var _ Reloader = wssListener{}

// Reload re-reads the certificate, key and client CA bundle.
func (w wssListener) Reload() error { return w.files.Reload() }

// newWSListener starts serving WebSocket upgrades on l; with files, over
// TLS (after the PROXY header, if any).
func newWSListener(l net.Listener, cfg Config, files *tlsFiles) *wsListener {
	w := &wsListener{
		ln:        l,
		path:      cfg.Path,
		origins:   cfg.Origins,
		files:     files,
		certField: cfg.TLS.CertUsername,
		conns:     make(chan net.Conn),
		done:      make(chan struct{}),
	}
	if files != nil {
		// WebSocket upgrades need HTTP/1.1; never offer h2.
		w.ln = tls.NewListener(l, files.serverConfig([]string{"http/1.1"}))
	}
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(w.serveHTTP),
		ReadHeaderTimeout: wsHeaderTimeout,
		MaxHeaderBytes:    wsMaxHeaderBytes,
		ConnState:         w.countPending,
		// Failed handshakes and bad requests are the clients' business:
		// log them at debug level rather than on stderr.
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	go w.serve()
	return w
}

// countPending keeps the count of connections whose upgrade is being
// read within wsMaxPending: each enters as new and leaves once hijacked
// (upgraded) or closed.
func (w *wsListener) countPending(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		if w.pending.Add(1) > wsMaxPending {
			c.Close() // the server sees it closed and reports StateClosed
		}
	case http.StateHijacked, http.StateClosed:
		w.pending.Add(-1)
	}
}

// serve runs the HTTP server until Close, or until the socket fails, which
// Accept then reports.
func (w *wsListener) serve() {
	err := w.srv.Serve(w.ln)
	if !errors.Is(err, http.ErrServerClosed) {
		w.mu.Lock()
		w.serveErr = err
		w.mu.Unlock()
	}
	w.stopped.Do(func() { close(w.done) })
}

// serveHTTP upgrades a request for the path to a WebSocket connection and
// hands it to Accept.
func (w *wsListener) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != w.path {
		http.Error(rw, "not found: MQTT over WebSocket is served at "+w.path, http.StatusNotFound)
		return
	}
	if offered := offeredSubprotocols(r); len(offered) > 0 && !supported(offered) {
		// websocket.Accept would go on without a subprotocol; refuse
		// instead ([MQTT-6.0.0-4] the server selects "mqtt"). A client
		// that offers none at all is let in: old libraries omit it.
		http.Error(rw, `unsupported WebSocket subprotocol `+strings.Join(offered, ", ")+
			`: MQTT over WebSocket needs "mqtt" (or "mqttv3.1")`, http.StatusBadRequest)
		return
	}
	hj := &hijackRecorder{ResponseWriter: rw}
	c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
		Subprotocols:   wsSubprotocols,
		OriginPatterns: w.origins,
	})
	if err != nil {
		return // Accept has answered with the HTTP error
	}
	// The connection outlives this request: NetConn gets a context of its
	// own, ended only by closing the connection. Its addresses are those
	// of the hijacked socket, hence the PROXY header's when there is one.
	// [MQTT-6.0.0-1] binary frames only: NetConn closes the connection
	// on any other kind. [MQTT-6.0.0-2] packets need not align with
	// frames: the broker reads NetConn as a byte stream.
	var nc net.Conn = &wsConn{Conn: websocket.NetConn(context.Background(), c, websocket.MessageBinary), raw: hj.conn}
	if w.certField != "" && r.TLS != nil {
		name, ok := certName(*r.TLS, w.certField)
		nc = &wsCertConn{Conn: nc, name: name, ok: ok}
	}
	select {
	case w.conns <- nc:
	case <-w.done:
		c.Close(websocket.StatusGoingAway, "server shutting down")
	}
}

// hijackRecorder keeps the connection websocket.Accept hijacks, so that
// closing it can be bounded (wsConn).
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, brw, err
}

// wsConn is an upgraded connection whose Close cannot hang. The close
// handshake first reads and discards what is left of the frame being
// read, byte by byte and with no deadline of its own: a peer that
// declared a frame of 2^63 bytes and stalls (or trickles) would hold
// Close, its socket and the broker's goroutine forever. A deadline on
// the socket under the WebSocket bounds it.
type wsConn struct {
	net.Conn          // websocket.NetConn
	raw      net.Conn // the hijacked connection
}

func (c *wsConn) Close() error {
	c.raw.SetDeadline(time.Now().Add(wsCloseTimeout))
	return c.Conn.Close()
}

// offeredSubprotocols lists the subprotocols the client offers, over every
// Sec-WebSocket-Protocol header and comma-separated value.
func offeredSubprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// supported reports whether one of the offered subprotocols is MQTT's.
func supported(offered []string) bool {
	for _, o := range offered {
		for _, s := range wsSubprotocols {
			if strings.EqualFold(o, s) {
				return true
			}
		}
	}
	return false
}

// Accept returns the next upgraded connection.
func (w *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.done:
		w.mu.Lock()
		err := w.serveErr
		w.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return nil, errClosed(w.ln.Addr())
	}
}

// Close stops the HTTP server and fails pending Accepts with
// net.ErrClosed. Connections already handed out stay up, as with any
// net.Listener; upgrades still in flight are closed.
func (w *wsListener) Close() error {
	if w.closed.Swap(true) {
		return errClosed(w.ln.Addr())
	}
	w.stopped.Do(func() { close(w.done) })
	err := w.srv.Close()
	// Serve may not have taken the socket yet (it runs in its own
	// goroutine); close it here so that it is shut when Close returns.
	if lerr := w.ln.Close(); err == nil && lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		err = lerr
	}
	return err
}

// Addr is the socket's address.
func (w *wsListener) Addr() net.Addr { return w.ln.Addr() }
