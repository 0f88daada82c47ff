package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternmq/tern/auth"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustHash(t *testing.T, pw string, a Algorithm) string {
	t.Helper()
	h, err := HashPassword(pw, a)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func user(name, pw string) *auth.Client {
	return &auth.Client{ClientID: "c-" + name, Username: name, UsernameFlag: true, Password: []byte(pw)}
}

func TestPasswordsAuthenticate(t *testing.T) {
	text := "# users\n\nalice:" + mustHash(t, "wonderland", Argon2id) + "\n" +
		"  bob:" + mustHash(t, "builder", Bcrypt) + "  \r\n" +
		"carol:" + refBcrypt2y + "\n"
	path := writeFile(t, "passwd", text)
	cases := []struct {
		name      string
		anonymous bool
		c         *auth.Client
		want      error
	}{
		{"argon2id user", false, user("alice", "wonderland"), nil},
		{"bcrypt user", false, user("bob", "builder"), nil},
		{"htpasswd user", false, user("carol", "hunter2"), nil},
		{"wrong password", false, user("alice", "builder"), auth.ErrBadCredentials},
		{"empty password", false, user("alice", ""), auth.ErrBadCredentials},
		{"unknown user", false, user("mallory", "wonderland"), auth.ErrBadCredentials},
		{"names are case sensitive", false, user("Alice", "wonderland"), auth.ErrBadCredentials},
		{"anonymous refused", false, &auth.Client{ClientID: "x"}, auth.ErrNotAuthorized},
		{"anonymous allowed", true, &auth.Client{ClientID: "x"}, nil},
		{"allowing anonymous does not open users", true, user("alice", "nope"), auth.ErrBadCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := LoadPasswords(path, tc.anonymous)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Authenticate(context.Background(), tc.c); !errors.Is(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("Authenticate = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPasswordsBusyRespectsContext(t *testing.T) {
	p, err := LoadPasswords(writeFile(t, "passwd", "alice:"+refBcrypt2y+"\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	for range cap(p.verifying) { // every verification slot taken
		p.verifying <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = p.Authenticate(ctx, user("alice", "hunter2"))
	if err == nil || errors.Is(err, auth.ErrBadCredentials) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate while saturated = %v, want a server-side error", err)
	}
}

func TestParsePasswordsErrors(t *testing.T) {
	cases := []struct{ name, text, wantErr string }{
		{"no colon", "# c\nalice\n", "passwd:2: want username:hash"},
		{"empty name", ":" + refBcrypt2y + "\n", "passwd:1: want username:hash"},
		{"bad hash", "alice:" + refBcrypt2y + "\nbob:plain\n", `passwd:2: user "bob": unsupported hash`},
		{"duplicate", "alice:" + refBcrypt2y + "\n\nalice:" + refArgon2id + "\n", `passwd:3: user "alice" already defined on line 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadPasswords(writeFile(t, "passwd", tc.text), false)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := LoadPasswords(filepath.Join(t.TempDir(), "missing"), false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPasswordsReload(t *testing.T) {
	path := writeFile(t, "passwd", "alice:"+refBcrypt2y+"\n")
	p, err := LoadPasswords(path, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(c *auth.Client, want error) {
		t.Helper()
		if got := p.Authenticate(ctx, c); !errors.Is(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("%s: Authenticate = %v, want %v", c.Username, got, want)
		}
	}
	check(user("alice", "hunter2"), nil)

	// Success: the new table replaces the old one whole.
	if err := os.WriteFile(path, []byte("bob:"+refArgon2id+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	check(user("bob", "hunter2"), nil)
	check(user("alice", "hunter2"), auth.ErrBadCredentials)

	// Failure: the error names file and line, the old table keeps serving.
	if err := os.WriteFile(path, []byte("carol:"+refBcrypt2y+"\ndave\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("Reload of a bad file: %v, want an error naming %s:2", err, path)
	}
	check(user("bob", "hunter2"), nil)
	check(user("carol", "hunter2"), auth.ErrBadCredentials)
	if p.Len() != 1 {
		t.Fatalf("Len = %d, want 1", p.Len())
	}

	// A vanished file is an error too, and changes nothing.
	os.Remove(path)
	if err := p.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	check(user("bob", "hunter2"), nil)
}
