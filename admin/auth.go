package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ternmq/tern/auth"
)

// Auth is who may use the admin server.
type Auth struct {
	// Token, when not empty, is accepted as "Authorization: Bearer <token>".
	Token string
	// Users may sign in with HTTP Basic, checked by Passwords (the
	// broker's password file).
	Users     []string
	Passwords auth.Authenticator
}

// Configured reports whether any credential can be accepted.
func (a Auth) Configured() bool {
	return a.Token != "" || (len(a.Users) > 0 && a.Passwords != nil)
}

// Password checks are deliberately slow (argon2id, tens of milliseconds
// and 19 MiB each), and a browser sends Basic credentials with every
// request: a successful check is remembered for a while, by a hash of
// name and password, until the credentials are replaced.
const (
	basicCacheTTL  = 5 * time.Minute
	basicCacheSize = 64
)

// authState is an Auth in force with its cache of checked passwords.
type authState struct {
	Auth
	token [32]byte // sha256 of Token: compared in constant time, whatever the lengths
	mu    sync.Mutex
	good  map[[32]byte]time.Time // mu guards; sha256(name, password) -> checked at
}

func newAuthState(a Auth) *authState {
	a.Users = slices.Clone(a.Users)
	return &authState{Auth: a, token: sha256.Sum256([]byte(a.Token)), good: make(map[[32]byte]time.Time)}
}

// verdict of a request's credentials.
type verdict int

const (
	noCredentials verdict = iota
	accepted
	refused   // bad or unknown credentials: 401
	forbidden // a valid user who is not an admin: 403
)

// check decides on r's Authorization header.
func (st *authState) check(ctx context.Context, r *http.Request) verdict {
	h := r.Header.Get("Authorization")
	if h == "" {
		return noCredentials
	}
	if tok, ok := cutPrefixFold(h, "Bearer "); ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if st.Token != "" && subtle.ConstantTimeCompare(sum[:], st.token[:]) == 1 {
			return accepted
		}
		return refused
	}
	name, pw, ok := r.BasicAuth()
	if !ok || st.Passwords == nil {
		return refused
	}
	if err := st.password(ctx, name, pw); err != nil {
		return refused
	}
	if !slices.Contains(st.Users, name) {
		return forbidden
	}
	return accepted
}

// password checks a name and password against the password file,
// remembering successes.
func (st *authState) password(ctx context.Context, name, pw string) error {
	key := sha256.Sum256([]byte(name + "\x00" + pw))
	now := time.Now()
	st.mu.Lock()
	at, ok := st.good[key]
	st.mu.Unlock()
	if ok && now.Sub(at) < basicCacheTTL {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := st.Passwords.Authenticate(ctx, &auth.Client{Username: name, UsernameFlag: true,
		Password: []byte(pw)})
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("empty user name")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.good) >= basicCacheSize {
		for k, t := range st.good {
			if now.Sub(t) >= basicCacheTTL || len(st.good) >= basicCacheSize {
				delete(st.good, k)
			}
		}
	}
	st.good[key] = now
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// guard lets through the requests the credentials allow: any request
// with accepted credentials; without credentials, reads on a server bound
// to loopback.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.auth.Load().check(r.Context(), r) {
		case accepted:
			next.ServeHTTP(w, r)
			return
		case noCredentials:
			if s.loopback.Load() && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, "credentials required")
		case forbidden:
			writeError(w, http.StatusForbidden, "not an admin user")
		default:
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, "bad credentials")
		}
	})
}

// challenge is the WWW-Authenticate of a 401. Basic is accepted but not
// offered: a browser would answer it with its own password dialog over
// the dashboard, which asks for a token itself.
const challenge = `Bearer realm="tern"`
