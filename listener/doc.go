// Package listener opens the network listeners the broker accepts
// connections on. Every kind yields a plain net.Listener whose Accept
// returns a net.Conn carrying MQTT bytes, so the broker does not care how
// they arrive; Listen(Config) picks the kind.
//
// Kinds (Config.Type):
//
//   - tcp (default): a TCP socket on Address (host:port).
//   - tls: MQTT over TLS. TLS 1.2 at least, Go's default cipher suites and
//     key exchanges (X25519 preferred). The certificate is served through
//     GetCertificate and the client CA pool through GetConfigForClient,
//     both from holders that Reload swaps atomically: new handshakes see
//     the new files, established connections carry on. Client
//     certificates: client_auth none, request (verified if sent) or
//     require, against client_ca_file.
//   - ws: MQTT over WebSocket (github.com/coder/websocket). An http.Server
//     on Address upgrades requests for Path (default /mqtt) offering the
//     "mqtt" or "mqttv3.1" subprotocol, refuses other subprotocols with
//     400, and hands each connection to Accept as a net.Conn of binary
//     messages. Browser origins other than the request's host need
//     Config.Origins.
//   - wss: ws over TLS, with the tls kind's certificates and reloading.
//   - unix: a unix socket at Address. A socket file left by a dead process
//     is removed; one a live process listens on is not.
//
// tls and wss listeners implement Reloader. With tls.cert_username set,
// their connections also implement CertUsername() (string, bool): the
// Common Name (cn) or first DNS, else e-mail, SAN (san) of the verified
// client certificate, which the broker may take as the username; a TLS
// connection completes its handshake first.
//
// PROXY protocol (proxy_protocol: true, any kind): a v1 or v2 header from
// a load balancer, read on the connection's first Read or RemoteAddr (never
// in Accept, and within a bounded time), makes the client's address the
// connection's RemoteAddr; on tls and wss it precedes the TLS handshake.
// The header is optional. Only trusted upstreams may send one:
// proxy_trusted, or loopback (127.0.0.0/8, ::1) when it is empty, so that
// a remote client cannot forge its address; on unix sockets, every peer.
// A header from elsewhere, or a malformed one, fails that connection's
// first Read, and the broker closes it; the listener warns about refused
// headers at most once a minute. An untrusted upstream that sends no
// header is served with its own address.
//
// Config.Validate reports every mistake at once, each naming the listener;
// Listen validates first and reads certificate files before it opens the
// socket.
package listener
