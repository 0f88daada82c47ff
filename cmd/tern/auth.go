package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ternmq/tern/auth"
	authfile "github.com/ternmq/tern/auth/file"
	httpauth "github.com/ternmq/tern/auth/http"
	"github.com/ternmq/tern/auth/scram"
)

// HTTPAuth is the http_auth configuration section: an HTTP service that
// authenticates (url), authorizes topics (acl_url) and client ids
// (clientid_url).
type HTTPAuth struct {
	URL         string            `yaml:"url"`          // authentication endpoint; "": not used for authentication
	ACLURL      string            `yaml:"acl_url"`      // authorization endpoint; "": not used for authorization
	ClientIDURL string            `yaml:"clientid_url"` // which client ids a client may use; "": not asked
	Timeout     time.Duration     `yaml:"timeout"`      // per request; default 2s
	CacheTTL    time.Duration     `yaml:"cache_ttl"`    // how long decisions are remembered; default 30s, negative: not at all
	RetryAfter  time.Duration     `yaml:"retry_after"`  // after a request got no answer, fail at once for this long; default 1s, negative: never
	Headers     map[string]string `yaml:"headers"`      // sent with every request
}

// buildAuth builds who may connect and what they may do from cfg:
//
//   - Authentication: the users table (also offered over v5 SCRAM-SHA-256),
//     the password file and the HTTP service, each when configured; a
//     client is accepted when any of them accepts it. Anonymous clients
//     are a setting of their own: allowed while none of the three is
//     configured, unless allow_anonymous says otherwise.
//   - Authorization: the ACL file and the HTTP ACL service, each when
//     configured; with both, both must allow; with neither, everything is
//     allowed. The same two decide which client ids a client may use
//     (clientid lines, clientid_url); see allOf.AuthorizeClientID.
//
// SIGHUP calls it again: the files are read anew and the result replaces
// the running one only if everything loaded.
func buildAuth(cfg Config, log *slog.Logger) (authn auth.Authenticator, authz auth.Authorizer, enhanced []auth.EnhancedAuthenticator, err error) {
	var backends []auth.Authenticator
	if len(cfg.Users) > 0 {
		backends = append(backends, auth.NewStatic(false, cfg.Users))
		// The same users may sign in with v5 enhanced authentication
		// (SCRAM-SHA-256), which never sends the password.
		creds := make(map[string]scram.Credentials, len(cfg.Users))
		for name, pw := range cfg.Users {
			c, err := scram.NewCredentials(pw, scram.MinIterations)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("user %q: %w", name, err)
			}
			creds[name] = c
		}
		lookup := func(name string) (scram.Credentials, bool) { c, ok := creds[name]; return c, ok }
		enhanced = []auth.EnhancedAuthenticator{scram.NewServer(lookup)}
	}
	if cfg.PasswordFile != "" {
		pw, err := authfile.LoadPasswords(cfg.PasswordFile, false)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("password_file: %w", err)
		}
		backends = append(backends, pw)
		log.Info("password file loaded", "file", cfg.PasswordFile, "users", pw.Len())
	}
	var web *httpauth.Backend
	if h := cfg.HTTPAuth; h != nil {
		if h.URL == "" && h.ACLURL == "" && h.ClientIDURL == "" {
			return nil, nil, nil, errors.New("http_auth: want url, acl_url, clientid_url or several")
		}
		web, err = httpauth.New(httpauth.Config{AuthURL: h.URL, ACLURL: h.ACLURL, ClientIDURL: h.ClientIDURL, Timeout: h.Timeout,
			CacheTTL: h.CacheTTL, RetryAfter: h.RetryAfter, Headers: h.Headers, Logger: log})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("http_auth: %w", err)
		}
		if h.URL != "" {
			backends = append(backends, web)
		}
	}
	// Anonymous access is allowed only while no authentication is
	// configured, unless the configuration says otherwise.
	anonymous := len(backends) == 0
	if cfg.AllowAnonymous != nil {
		anonymous = *cfg.AllowAnonymous
	}
	if len(backends) == 0 {
		authn = auth.NewStatic(anonymous, nil)
	} else {
		authn = anyOf{anonymous: anonymous, backends: backends}
	}

	var authzs []auth.Authorizer
	if cfg.ACLFile != "" {
		acl, err := authfile.LoadACL(cfg.ACLFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("acl_file: %w", err)
		}
		authzs = append(authzs, acl)
		log.Info("ACL file loaded", "file", cfg.ACLFile)
	}
	if web != nil && (cfg.HTTPAuth.ACLURL != "" || cfg.HTTPAuth.ClientIDURL != "") {
		// Without acl_url it allows every topic and decides client ids only.
		authzs = append(authzs, web)
	}
	switch len(authzs) {
	case 0:
		authz = auth.AllowAll{}
	case 1:
		// As it is, so that the broker sees its auth.ConnectAuthorizer.
		authz = authzs[0]
	default:
		authz = allOf(authzs)
	}
	return authn, authz, enhanced, nil
}

// anyOf accepts a client that any of its backends accepts. Anonymous
// clients (no username) are decided here, once, not by each backend.
type anyOf struct {
	anonymous bool
	backends  []auth.Authenticator
}

var _ auth.Authenticator = anyOf{}

// Authenticate asks the backends in order until one accepts. When none
// does, a failure (a backend that could not decide) outranks a refusal,
// since that backend might have accepted: the client hears "server
// unavailable" and may try again. Among refusals, bad credentials
// outranks not authorized.
func (a anyOf) Authenticate(ctx context.Context, c *auth.Client) error {
	if !c.UsernameFlag {
		if a.anonymous {
			return nil
		}
		return auth.ErrNotAuthorized
	}
	var failed, refused error
	for _, b := range a.backends {
		err := b.Authenticate(ctx, c)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, auth.ErrBadCredentials):
			refused = err
		case errors.Is(err, auth.ErrNotAuthorized):
			if refused == nil {
				refused = err
			}
		default:
			failed = errors.Join(failed, err)
		}
	}
	if failed != nil {
		return failed
	}
	return refused
}

// allOf allows what every one of its authorizers allows.
type allOf []auth.Authorizer

var (
	_ auth.Authorizer        = allOf{}
	_ auth.ConnectAuthorizer = allOf{}
)

func (a allOf) Authorize(c *auth.Client, action auth.Action, topic string) bool {
	for _, z := range a {
		if !z.Authorize(c, action, topic) {
			return false
		}
	}
	return true
}

// AuthorizeClientID combines the client id decisions of those authorizers
// that make them: a refusal outranks everything (the others are not
// asked once one refuses, so the cheap ACL file spares the HTTP request),
// then a failure to decide, then a grant; with none of these, the
// default. An error comes with auth.ClientIDDenied.
func (a allOf) AuthorizeClientID(ctx context.Context, c *auth.Client) (auth.ClientIDDecision, error) {
	var failed error
	allowed := false
	for _, z := range a {
		ca, ok := z.(auth.ConnectAuthorizer)
		if !ok {
			continue
		}
		d, err := ca.AuthorizeClientID(ctx, c)
		switch {
		case err != nil:
			failed = errors.Join(failed, err)
		case d == auth.ClientIDDenied:
			return auth.ClientIDDenied, nil
		case d == auth.ClientIDAllowed:
			allowed = true
		}
	}
	switch {
	case failed != nil:
		return auth.ClientIDDenied, failed
	case allowed:
		return auth.ClientIDAllowed, nil
	}
	return auth.ClientIDDefault, nil
}
