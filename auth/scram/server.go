package scram

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"

	"github.com/ternmq/tern/auth"
)

// Lookup returns the stored credentials of a user, ok false if there is no
// such user. It is called once per exchange, from the connection's
// goroutine, and must be safe for concurrent use.
type Lookup func(username string) (Credentials, bool)

// Server is the SCRAM-SHA-256 authentication method. It is immutable after
// NewServer and safe for concurrent use.
type Server struct {
	lookup         Lookup
	secret         []byte
	fakeIterations int
	nonce          func() string // server nonce part; tests make it fixed
}

var _ auth.EnhancedAuthenticator = (*Server)(nil)

// Option configures a Server.
type Option func(*Server)

// WithSecret sets the key from which fake salts for unknown users are
// derived. Without it a random key is used, so an unknown user's salt
// changes when the broker restarts while a real user's does not; pass a
// persistent secret (at least 32 random bytes) if that matters.
func WithSecret(secret []byte) Option {
	return func(s *Server) { s.secret = append([]byte(nil), secret...) }
}

// WithFakeIterations sets the iteration count advertised for unknown users
// (default DefaultIterations, never below MinIterations). Set it to the
// count your real credentials use, or the count gives existence away.
func WithFakeIterations(n int) Option {
	return func(s *Server) { s.fakeIterations = max(n, MinIterations) }
}

// NewServer returns a SCRAM-SHA-256 server that finds users with lookup.
func NewServer(lookup Lookup, opts ...Option) *Server {
	s := &Server{lookup: lookup, fakeIterations: DefaultIterations, nonce: rand.Text}
	for _, o := range opts {
		o(s)
	}
	if len(s.secret) == 0 {
		s.secret = make([]byte, 32)
		rand.Read(s.secret) // never fails (Go 1.24+ crashes instead)
	}
	return s
}

// Method returns "SCRAM-SHA-256".
func (s *Server) Method() string { return Method }

// Start begins an exchange. If c carries a username (CONNECT User Name, or
// the identity of a client re-authenticating), the SCRAM user name must
// equal it: the identity the broker has on record cannot change under it.
func (s *Server) Start(_ context.Context, c *auth.Client) (auth.Exchange, error) {
	e := &exchange{s: s}
	if c != nil && c.UsernameFlag {
		e.bound, e.hasBound = c.Username, true
	}
	return e, nil
}

type state uint8

const (
	wantClientFirst state = iota
	wantClientFinal
	finished // succeeded or failed; Step always errors
)

// exchange is one server-side conversation. Not safe for concurrent use.
type exchange struct {
	s        *Server
	bound    string
	hasBound bool
	state    state

	user       string // from client-first-message
	known      bool   // the user exists; false: cred is fake
	cred       Credentials
	gs2        string // gs2 header as the client sent it, echoed in c=
	nonce      string // client nonce + server nonce
	authPrefix string // client-first-message-bare "," server-first-message ","
	username   string // set only on success
}

var errFinished = fmt.Errorf("scram: exchange already finished: %w", auth.ErrBadCredentials)

// fail is the error for anything the client got wrong.
func fail(why string) error {
	return fmt.Errorf("scram: %s: %w", why, auth.ErrBadCredentials)
}

func (e *exchange) Step(ctx context.Context, in []byte) (out []byte, done bool, err error) {
	if err := ctx.Err(); err != nil {
		e.finish()
		return nil, false, err
	}
	switch e.state {
	case wantClientFirst:
		out, err = e.clientFirst(string(in))
		if err == nil {
			e.state = wantClientFinal
			return out, false, nil
		}
	case wantClientFinal:
		out, err = e.clientFinal(string(in))
		if err == nil {
			e.username = e.user
			e.finish()
			return out, true, nil
		}
	default:
		return nil, false, errFinished
	}
	e.finish()
	return nil, false, err
}

func (e *exchange) Username() string { return e.username }

// finish drops the credentials: nothing may be stepped any more.
func (e *exchange) finish() {
	e.state, e.cred, e.authPrefix = finished, Credentials{}, ""
}

// clientFirst handles client-first-message and returns server-first-message.
func (e *exchange) clientFirst(msg string) ([]byte, error) {
	var gs2 string
	switch {
	case strings.HasPrefix(msg, "n,,"), strings.HasPrefix(msg, "y,,"):
		// "y": the client could bind but thinks we cannot; we cannot, so
		// this is no downgrade (RFC 5802 section 6).
		gs2 = msg[:3]
	case strings.HasPrefix(msg, "p="):
		return nil, fail("channel binding is not supported (use gs2 header \"n,,\")")
	case strings.HasPrefix(msg, "n,a="), strings.HasPrefix(msg, "y,a="):
		return nil, fail("authorization identity is not supported (use gs2 header \"n,,\")")
	default:
		return nil, fail("malformed client-first-message: gs2 header must be \"n,,\"")
	}
	bare := msg[3:]
	attrs, err := parseAttrs(bare)
	if err != nil {
		return nil, fail("malformed client-first-message: " + err.Error())
	}
	if attrs[0].key == 'm' {
		return nil, fail("mandatory extension not supported") // RFC 5802 section 5.1 "m"
	}
	name, err := want(attrs, 0, 'n')
	if err != nil {
		return nil, fail("malformed client-first-message: " + err.Error())
	}
	user, err := unescapeName(name)
	if err != nil {
		return nil, fail("malformed client-first-message: " + err.Error())
	}
	cnonce, err := want(attrs, 1, 'r')
	if err != nil {
		return nil, fail("malformed client-first-message: " + err.Error())
	}
	if !validNonce(cnonce) {
		return nil, fail("malformed client-first-message: bad nonce")
	}
	// attrs[2:] are extensions we do not know; RFC 5802 says ignore them.
	if e.hasBound && user != e.bound {
		return nil, fmt.Errorf("scram: user name differs from the client's MQTT user name: %w", auth.ErrNotAuthorized)
	}
	cred, ok := e.s.lookup(user)
	if ok {
		if err := cred.valid(); err != nil {
			// A store fault, not the client's: the broker logs it.
			return nil, fmt.Errorf("scram: stored credentials for %q unusable: %v", user, err)
		}
	} else {
		cred = e.s.fake(user)
	}
	e.user, e.known, e.cred, e.gs2 = user, ok, cred, gs2
	e.nonce = cnonce + e.s.nonce()
	first := "r=" + e.nonce + ",s=" + b64.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	e.authPrefix = bare + "," + first + ","
	return []byte(first), nil
}

// clientFinal checks client-final-message and returns server-final-message.
func (e *exchange) clientFinal(msg string) ([]byte, error) {
	attrs, err := parseAttrs(msg)
	if err != nil {
		return nil, fail("malformed client-final-message: " + err.Error())
	}
	cb, err := want(attrs, 0, 'c')
	if err != nil {
		return nil, fail("malformed client-final-message: " + err.Error())
	}
	if got, err := b64.DecodeString(cb); err != nil || string(got) != e.gs2 {
		return nil, fail("channel binding attribute does not match the gs2 header")
	}
	nonce, err := want(attrs, 1, 'r')
	if err != nil {
		return nil, fail("malformed client-final-message: " + err.Error())
	}
	if nonce != e.nonce {
		return nil, fail("nonce mismatch")
	}
	last := attrs[len(attrs)-1]
	if len(attrs) < 3 || last.key != 'p' {
		return nil, fail("malformed client-final-message: proof must come last")
	}
	proof, err := b64.DecodeString(last.val)
	if err != nil || len(proof) != keyLen {
		return nil, fail("malformed client-final-message: bad proof encoding")
	}
	authMsg := e.authPrefix + msg[:len(msg)-len(",p=")-len(last.val)]
	// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the client
	// knew the password iff H(ClientKey) == StoredKey. Fake credentials
	// go through the same work so timing does not tell them apart.
	clientKey := make([]byte, keyLen)
	subtle.XORBytes(clientKey, proof, mac(e.cred.StoredKey, authMsg))
	sum := sha256.Sum256(clientKey)
	ok := subtle.ConstantTimeCompare(sum[:], e.cred.StoredKey)
	if ok&boolInt(e.known) != 1 {
		return nil, errInvalidProof
	}
	return []byte("v=" + b64.EncodeToString(mac(e.cred.ServerKey, authMsg))), nil
}

// errInvalidProof is the same for a wrong password and an unknown user.
var errInvalidProof = fail("invalid proof")

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fake returns stable made-up credentials for a user that does not exist,
// so that the server-first-message looks like a real one.
func (s *Server) fake(user string) Credentials {
	return Credentials{
		Salt:       mac(s.secret, "salt\x00"+user)[:saltLen],
		Iterations: s.fakeIterations,
		StoredKey:  mac(s.secret, "stored\x00"+user),
		ServerKey:  mac(s.secret, "server\x00"+user),
	}
}
