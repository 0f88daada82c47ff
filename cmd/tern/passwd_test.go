package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternmq/tern/auth"
	authfile "github.com/ternmq/tern/auth/file"
)

// passwd runs `tern passwd args...` with stdin and returns the exit code
// and what it wrote to stderr.
func passwd(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"passwd"}, args...), strings.NewReader(stdin), &out, &errb)
	if out.Len() > 0 {
		t.Errorf("passwd wrote to stdout: %q", out.String())
	}
	return code, errb.String()
}

// login reports what the password file at path says to user with pw.
func login(t *testing.T, path, user, pw string) error {
	t.Helper()
	p, err := authfile.LoadPasswords(path, false)
	if err != nil {
		t.Fatal(err)
	}
	return p.Authenticate(context.Background(), &auth.Client{Username: user, UsernameFlag: true, Password: []byte(pw)})
}

func TestPasswd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	steps := []struct {
		name  string
		stdin string
		args  []string
		check func(t *testing.T)
	}{
		{"create with argument", "", []string{"-c", path, "alice", "wonderland"}, func(t *testing.T) {
			if err := login(t, path, "alice", "wonderland"); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(read(), "alice:$argon2id$v=19$m=19456,t=2,p=1$") {
				t.Fatalf("file %q: want an argon2id entry", read())
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
			}
		}},
		{"add from stdin, bcrypt", "builder\r\n", []string{"-b", path, "bob"}, func(t *testing.T) {
			if err := login(t, path, "bob", "builder"); err != nil {
				t.Fatal(err)
			}
			if err := login(t, path, "alice", "wonderland"); err != nil {
				t.Fatal("adding bob lost alice:", err)
			}
			if !strings.Contains(read(), "\nbob:$2a$10$") {
				t.Fatalf("file %q: want a bcrypt entry for bob", read())
			}
		}},
		{"change from stdin without newline", "looking-glass", []string{path, "alice"}, func(t *testing.T) {
			if err := login(t, path, "alice", "looking-glass"); err != nil {
				t.Fatal(err)
			}
			if err := login(t, path, "alice", "wonderland"); !errors.Is(err, auth.ErrBadCredentials) {
				t.Fatal("old password still works:", err)
			}
		}},
		{"delete", "", []string{"-D", path, "bob"}, func(t *testing.T) {
			if err := login(t, path, "bob", "builder"); !errors.Is(err, auth.ErrBadCredentials) {
				t.Fatal("deleted user still works:", err)
			}
			if err := login(t, path, "alice", "looking-glass"); err != nil {
				t.Fatal(err)
			}
		}},
		{"create replaces", "", []string{"-c", path, "carol", "x"}, func(t *testing.T) {
			if err := login(t, path, "alice", "looking-glass"); !errors.Is(err, auth.ErrBadCredentials) {
				t.Fatal("-c kept the old users:", err)
			}
			if err := login(t, path, "carol", "x"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if code, stderr := passwd(t, s.stdin, s.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			s.check(t)
		})
	}
}

func TestPasswdErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	if code, stderr := passwd(t, "", "-c", path, "alice", "pw"); code != 0 {
		t.Fatalf("setup: exit %d: %s", code, stderr)
	}
	before, _ := os.ReadFile(path)
	cases := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no arguments", "", nil, 2, "Usage: tern passwd"},
		{"no user", "", []string{path}, 2, "Usage: tern passwd"},
		{"too many", "", []string{path, "a", "b", "c"}, 2, "Usage: tern passwd"},
		{"unknown flag", "", []string{"-x", path, "a"}, 2, "-x"},
		{"delete with password", "", []string{"-D", path, "alice", "pw"}, 2, "-D takes"},
		{"delete with create", "", []string{"-D", "-c", path, "alice"}, 2, "-D takes"},
		{"delete unknown user", "", []string{"-D", path, "nobody"}, 1, "no such user"},
		{"delete in missing file", "", []string{"-D", filepath.Join(dir, "none"), "alice"}, 1, "no such file"},
		{"empty stdin", "", []string{path, "bob"}, 1, "no password on standard input"},
		{"empty password", "\n", []string{path, "bob"}, 1, "empty password"},
		{"colon in user", "", []string{path, "a:b", "pw"}, 1, "':'"},
		{"bcrypt too long", "", []string{"-b", path, "bob", strings.Repeat("x", 73)}, 1, "72"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := passwd(t, tc.stdin, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.wantCode, tc.wantErr)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("a failed command changed the file")
			}
		})
	}
}

func TestAskTwice(t *testing.T) {
	cases := []struct {
		name    string
		answers []string
		want    string
		wantErr bool
	}{
		{"same twice", []string{"s3cret", "s3cret"}, "s3cret", false},
		{"different", []string{"s3cret", "s3cert"}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var prompts []string
			i := 0
			got, err := askTwice(func(p string) (string, error) {
				prompts = append(prompts, p)
				i++
				return tc.answers[i-1], nil
			})
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("askTwice = %q, %v", got, err)
			}
			if len(prompts) != 2 || prompts[0] == prompts[1] {
				t.Fatalf("prompts %q: want two different prompts", prompts)
			}
		})
	}
}
