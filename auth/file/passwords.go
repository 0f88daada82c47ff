package file

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/ternmq/tern/auth"
)

// Passwords authenticates clients against a password file.
type Passwords struct {
	path           string
	allowAnonymous bool
	users          atomic.Pointer[map[string]hash]
	// verifying bounds concurrent hash verifications: each argon2id one
	// takes 19 MiB, and a connection storm must not take the memory of
	// thousands.
	verifying chan struct{}
}

var _ auth.Authenticator = (*Passwords)(nil)

// LoadPasswords reads the password file at path. Clients without a
// username are accepted only when allowAnonymous is set.
func LoadPasswords(path string, allowAnonymous bool) (*Passwords, error) {
	p := &Passwords{path: path, allowAnonymous: allowAnonymous,
		verifying: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload re-reads the file. On any error the users already loaded stay in
// force and the error names the file and line.
func (p *Passwords) Reload() error {
	data, err := os.ReadFile(p.path)
	if err != nil {
		return err
	}
	users, err := parsePasswords(p.path, data)
	if err != nil {
		return err
	}
	p.users.Store(&users)
	return nil
}

// Len returns the number of users loaded.
func (p *Passwords) Len() int { return len(*p.users.Load()) }

// Authenticate accepts a known user with the right password and, when
// allowed, anonymous clients.
func (p *Passwords) Authenticate(ctx context.Context, c *auth.Client) error {
	if !c.UsernameFlag {
		if p.allowAnonymous {
			return nil
		}
		return auth.ErrNotAuthorized
	}
	h, ok := (*p.users.Load())[c.Username]
	if !ok {
		// The same work for an unknown name as for a known one.
		h = dummyHash()
	}
	select {
	case p.verifying <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("password check: %w", ctx.Err())
	}
	good := h.verify(c.Password)
	<-p.verifying
	if !good || !ok {
		return auth.ErrBadCredentials
	}
	return nil
}

// parsePasswords parses a password file; path is for error messages.
func parsePasswords(path string, data []byte) (map[string]hash, error) {
	users := make(map[string]hash)
	firstLine := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, enc, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: want username:hash", path, n)
		}
		if first, dup := firstLine[name]; dup {
			return nil, fmt.Errorf("%s:%d: user %q already defined on line %d", path, n, name, first)
		}
		h, err := parseHash(enc)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %w", path, n, name, err)
		}
		users[name], firstLine[name] = h, n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}
