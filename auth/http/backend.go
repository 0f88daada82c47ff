package httpauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/auth"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout    = 2 * time.Second
	DefaultCacheTTL   = 30 * time.Second
	DefaultCacheSize  = 10000
	DefaultRetryAfter = time.Second
)

// Config says where to ask and how long to remember.
type Config struct {
	AuthURL string // authentication endpoint; "": Authenticate refuses to guess and fails
	ACLURL  string // authorization endpoint; "": everything allowed
	// ClientIDURL decides which client ids a client may use; "": no
	// opinion (auth.ClientIDDefault), nothing asked.
	ClientIDURL string
	// Timeout bounds each request; default DefaultTimeout.
	Timeout time.Duration
	// RetryAfter is how long, after a request got no answer (timeout,
	// refused), further requests fail at once instead of each waiting
	// for Timeout: a service that is down costs the broker one timeout
	// per RetryAfter, not one per check. Default DefaultRetryAfter,
	// negative: never.
	RetryAfter time.Duration
	// CacheTTL is how long decisions are remembered; default
	// DefaultCacheTTL, negative: not at all.
	CacheTTL time.Duration
	// CacheSize bounds each of the three caches; default DefaultCacheSize.
	CacheSize int
	Headers   map[string]string // sent with every request (e.g. Authorization)
	Client    *http.Client      // default: a client of its own
	Logger    *slog.Logger      // failed ACL requests are logged; default slog.Default()
	Now       func() time.Time  // the cache's clock; default time.Now
}

// Backend is an HTTP authenticator and authorizer.
type Backend struct {
	cfg     Config
	authc   *cache[[sha256.Size]byte, error]
	aclc    *cache[aclKey, bool]
	idc     *cache[clientIDKey, auth.ClientIDDecision]
	client  *http.Client
	headers http.Header
	// downUntil is when requests may try the service again (Unix ns from
	// cfg.Now); 0: it answered last time.
	downUntil atomic.Int64
}

var (
	_ auth.Authenticator     = (*Backend)(nil)
	_ auth.Authorizer        = (*Backend)(nil)
	_ auth.ConnectAuthorizer = (*Backend)(nil)
)

// New checks cfg and returns a Backend.
func New(cfg Config) (*Backend, error) {
	for _, u := range []struct{ name, v string }{{"auth URL", cfg.AuthURL}, {"ACL URL", cfg.ACLURL}, {"client id URL", cfg.ClientIDURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.name, err)
		}
		if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("%s %q: want http:// or https:// and a host", u.name, u.v)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Backend{
		cfg:     cfg,
		authc:   newCache[[sha256.Size]byte, error](cfg.CacheTTL, cfg.CacheSize, cfg.Now),
		aclc:    newCache[aclKey, bool](cfg.CacheTTL, cfg.CacheSize, cfg.Now),
		idc:     newCache[clientIDKey, auth.ClientIDDecision](cfg.CacheTTL, cfg.CacheSize, cfg.Now),
		client:  cfg.Client,
		headers: make(http.Header),
	}
	if b.client == nil {
		b.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	for k, v := range cfg.Headers {
		b.headers.Set(k, v)
	}
	b.headers.Set("Content-Type", "application/json")
	return b, nil
}

type authRequest struct {
	ClientID        string `json:"clientid"`
	Username        string `json:"username"`
	Password        string `json:"password"`
	RemoteAddr      string `json:"remote_addr"`
	ProtocolVersion int    `json:"protocol_version"`
}

// Authenticate asks the auth URL about c.
func (b *Backend) Authenticate(ctx context.Context, c *auth.Client) error {
	if b.cfg.AuthURL == "" {
		return errors.New("http auth: no auth URL configured")
	}
	key := authKey(c)
	if err, ok := b.authc.get(key); ok {
		return err
	}
	req := authRequest{ClientID: c.ClientID, Username: c.Username, Password: string(c.Password), ProtocolVersion: int(c.Version)}
	if c.RemoteAddr != nil {
		req.RemoteAddr = c.RemoteAddr.String()
	}
	code, err := b.post(ctx, b.cfg.AuthURL, req, nil)
	switch {
	case err != nil:
		return fmt.Errorf("http auth: %w", err)
	case code == http.StatusOK:
		err = nil
	case code == http.StatusUnauthorized:
		err = auth.ErrBadCredentials
	case code == http.StatusForbidden:
		err = auth.ErrNotAuthorized
	default:
		// Not a decision: not cached, and never a "yes".
		return fmt.Errorf("http auth: %s answered HTTP %d", b.cfg.AuthURL, code)
	}
	b.authc.put(key, err)
	return err
}

// authKey digests what an authentication decision depends on, so that the
// cache holds no password. Fields are length-prefixed so that no two
// different inputs run together into the same bytes.
func authKey(c *auth.Client) [sha256.Size]byte {
	host := remoteHost(c.RemoteAddr)
	h := sha256.New()
	var buf []byte
	for _, f := range []string{c.ClientID, c.Username, string(c.Password), host} {
		buf = binary.AppendUvarint(buf[:0], uint64(len(f)))
		h.Write(buf)
		io.WriteString(h, f)
	}
	flags := []byte{c.Version, 0}
	if c.UsernameFlag {
		flags[1] = 1
	}
	h.Write(flags)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// remoteHost is addr without its port: a reconnect comes from another one.
func remoteHost(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

type aclRequest struct {
	ClientID string `json:"clientid"`
	Username string `json:"username"`
	Topic    string `json:"topic"`
	Action   string `json:"action"`
}

type aclKey struct {
	clientID, username string
	usernameFlag       bool
	action             auth.Action
	topic              string
}

var actionNames = map[auth.Action]string{auth.Publish: "publish", auth.Subscribe: "subscribe", auth.Read: "read"}

// Authorize asks the ACL URL whether c may perform action on topic. It
// fails closed: anything but HTTP 200 denies.
func (b *Backend) Authorize(c *auth.Client, action auth.Action, topic string) bool {
	if b.cfg.ACLURL == "" {
		return true
	}
	name, ok := actionNames[action]
	if c == nil || !ok {
		return false
	}
	key := aclKey{c.ClientID, c.Username, c.UsernameFlag, action, topic}
	if allow, ok := b.aclc.get(key); ok {
		return allow
	}
	code, err := b.post(context.Background(), b.cfg.ACLURL, aclRequest{c.ClientID, c.Username, topic, name}, nil)
	switch {
	case err != nil:
		b.cfg.Logger.Warn("http acl request failed: denied", "client", c.ClientID, "topic", topic, "action", name, "err", err)
		return false
	case code == http.StatusOK:
		b.aclc.put(key, true)
		return true
	case code >= 400 && code < 500:
		b.aclc.put(key, false)
		return false
	default:
		b.cfg.Logger.Warn("http acl: unexpected status: denied", "client", c.ClientID, "topic", topic, "action", name, "status", code)
		return false
	}
}

type clientIDRequest struct {
	ClientID        string `json:"clientid"`
	Username        string `json:"username"`
	Anonymous       bool   `json:"anonymous"` // no username, no certificate name
	Cert            bool   `json:"cert"`      // username is a verified certificate's name
	RemoteAddr      string `json:"remote_addr"`
	ProtocolVersion int    `json:"protocol_version"`
}

type clientIDKey struct {
	clientID, username string
	anonymous, cert    bool
	host               string
	version            byte
}

// clientIDResults are the answers a 200 reply may carry.
var clientIDResults = map[string]auth.ClientIDDecision{
	"allow": auth.ClientIDAllowed, "default": auth.ClientIDDefault, "deny": auth.ClientIDDenied}

// AuthorizeClientID asks the client id URL whether c may use its client
// id: 200 with {"result": "allow"|"default"|"deny"} says which, 204 is
// the default, any other 4xx refuses. Anything else is an error, and an
// error comes with auth.ClientIDDenied, so that it fails closed even for
// a caller that looks only at the decision. With no client id URL the
// answer is auth.ClientIDDefault, without asking.
func (b *Backend) AuthorizeClientID(ctx context.Context, c *auth.Client) (auth.ClientIDDecision, error) {
	if b.cfg.ClientIDURL == "" {
		return auth.ClientIDDefault, nil
	}
	if c == nil {
		return auth.ClientIDDenied, nil
	}
	host := remoteHost(c.RemoteAddr)
	key := clientIDKey{c.ClientID, c.Username, !c.UsernameFlag, c.CertUsername, host, c.Version}
	if d, ok := b.idc.get(key); ok {
		return d, nil
	}
	req := clientIDRequest{ClientID: c.ClientID, Username: c.Username, Anonymous: !c.UsernameFlag,
		Cert: c.CertUsername, ProtocolVersion: int(c.Version)}
	if c.RemoteAddr != nil {
		req.RemoteAddr = c.RemoteAddr.String()
	}
	var reply []byte
	code, err := b.post(ctx, b.cfg.ClientIDURL, req, &reply)
	var d auth.ClientIDDecision
	switch {
	case err != nil:
		return auth.ClientIDDenied, fmt.Errorf("http clientid: %w", err)
	case code == http.StatusOK:
		// The grant, which may take over another identity's session,
		// must be said in words: a service answering 200 to anything
		// does not hand it out by accident.
		var r struct {
			Result *string `json:"result"`
		}
		ok := false
		if json.Unmarshal(reply, &r) == nil && r.Result != nil {
			d, ok = clientIDResults[*r.Result]
		}
		if !ok {
			return auth.ClientIDDenied, fmt.Errorf(`http clientid: %s answered 200 without {"result": "allow", "default" or "deny"}: %.100q`, b.cfg.ClientIDURL, reply)
		}
	case code == http.StatusNoContent:
		d = auth.ClientIDDefault
	case code >= 400 && code < 500:
		d = auth.ClientIDDenied
	default:
		// Not a decision: not cached.
		return auth.ClientIDDenied, fmt.Errorf("http clientid: %s answered HTTP %d", b.cfg.ClientIDURL, code)
	}
	b.idc.put(key, d)
	return d, nil
}

// maxReply bounds a reply body that is read.
const maxReply = 4 << 10

var errUnavailable = errors.New("the service did not answer lately; not asked again yet")

// post sends body as JSON to u within the configured timeout and returns
// the status code. With reply, the body of a 200 answer (up to maxReply
// bytes) is stored there.
func (b *Backend) post(ctx context.Context, u string, body any, reply *[]byte) (int, error) {
	if until := b.downUntil.Load(); until != 0 && b.cfg.Now().UnixNano() < until {
		return 0, errUnavailable
	}
	data, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	for k, v := range b.headers {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if parent.Err() == nil && b.cfg.RetryAfter > 0 {
			// The service, not our caller, gave up.
			b.downUntil.Store(b.cfg.Now().Add(b.cfg.RetryAfter).UnixNano())
		}
		return 0, err
	}
	if b.downUntil.Load() != 0 {
		b.downUntil.Store(0)
	}
	defer resp.Body.Close()
	if reply != nil && resp.StatusCode == http.StatusOK {
		*reply, err = io.ReadAll(io.LimitReader(resp.Body, maxReply))
		if err != nil {
			return 0, fmt.Errorf("reading the reply: %w", err)
		}
	}
	// Read a little more of the body so the connection can be reused;
	// the status (and reply) is the answer.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
