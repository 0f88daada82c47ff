package file

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEditPasswordFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	h1, h2 := refBcrypt2y, refArgon2id

	// SetPassword creates a missing file.
	if err := SetPassword(path, "alice", h1); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "alice:"+h1+"\n"; got != want {
		t.Fatalf("after create:\n%s\nwant\n%s", got, want)
	}
	// Hand-written comments and other users survive edits.
	if err := os.WriteFile(path, []byte("# admins\nalice:"+h1+"\n\n# others\nbob:"+h1), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		edit func() error
		want string
	}{
		{"change", func() error { return SetPassword(path, "alice", h2) },
			"# admins\nalice:" + h2 + "\n\n# others\nbob:" + h1 + "\n"},
		{"add", func() error { return SetPassword(path, "carol", h1) },
			"# admins\nalice:" + h2 + "\n\n# others\nbob:" + h1 + "\ncarol:" + h1 + "\n"},
		{"delete", func() error { return DeleteUser(path, "bob") },
			"# admins\nalice:" + h2 + "\n\n# others\ncarol:" + h1 + "\n"},
		{"create overwrites", func() error { return CreateFile(path, "dave", h2) },
			"dave:" + h2 + "\n"},
	}
	for _, s := range steps {
		if err := s.edit(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := read(); got != s.want {
			t.Fatalf("%s:\n%s\nwant\n%s", s.name, got, s.want)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, want 0600", s.name, fi.Mode().Perm())
		}
		// The edited file is one the broker loads.
		if _, err := LoadPasswords(path, false); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if err := DeleteUser(path, "nobody"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("deleting a missing user: %v", err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestEditRefusesBadEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	cases := []struct{ name, user, hash, wantErr string }{
		{"empty user", "", refBcrypt2y, "empty username"},
		{"colon", "a:b", refBcrypt2y, "':'"},
		{"newline", "a\nb:" + refBcrypt2y, refBcrypt2y, "line breaks"},
		{"comment", "#root", refBcrypt2y, "'#'"},
		{"space", " alice", refBcrypt2y, "white space"},
		{"bad hash", "alice", "plain", "unsupported hash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := SetPassword(path, tc.user, tc.hash)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a refused entry created the file")
			}
		})
	}
}
