package file

import (
	"strings"
	"testing"
)

// Hashes made by other tools, so that files they write work here:
// the reference argon2 CLI (`echo -n hunter2 | argon2 ternsaltsalt16b -id
// -t 2 -k 19456 -p 1 -l 32 -e`) and Apache's htpasswd (`htpasswd -nbB -C 5`).
const (
	refArgon2id = "$argon2id$v=19$m=19456,t=2,p=1$dGVybnNhbHRzYWx0MTZi$uCs/fv62Fq7xiBhPg6YHBkuWE/jicRDmWcbE22f/eIc"
	refBcrypt2y = "$2y$05$VeRcGQdquji4DsiRu8l2n.L7LRrBk58io9XfMf387J4C8JpbCKDrS"
)

func TestHashVerify(t *testing.T) {
	argon, err := HashPassword("hunter2", Argon2id)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := HashPassword("hunter2", Bcrypt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(argon, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("argon2id hash %q does not use the default parameters", argon)
	}
	if !strings.HasPrefix(bc, "$2a$10$") {
		t.Errorf("bcrypt hash %q", bc)
	}
	cases := []struct {
		name, hash, pw string
		want           bool
	}{
		{"argon2id right", argon, "hunter2", true},
		{"argon2id wrong", argon, "hunter3", false},
		{"argon2id empty", argon, "", false},
		{"bcrypt right", bc, "hunter2", true},
		{"bcrypt wrong", bc, "Hunter2", false},
		{"reference argon2id right", refArgon2id, "hunter2", true},
		{"reference argon2id wrong", refArgon2id, "hunter", false},
		{"htpasswd bcrypt right", refBcrypt2y, "hunter2", true},
		{"htpasswd bcrypt wrong", refBcrypt2y, "hunter22", false},
		{"bcrypt $2b$", "$2b$" + refBcrypt2y[4:], "hunter2", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHash(tc.hash)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.verify([]byte(tc.pw)); got != tc.want {
				t.Fatalf("verify(%q) = %v, want %v", tc.pw, got, tc.want)
			}
		})
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	a, _ := HashPassword("same", Argon2id)
	b, _ := HashPassword("same", Argon2id)
	if a == b {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestParseHashErrors(t *testing.T) {
	salt, key := "dGVybnNhbHRzYWx0MTZi", "uCs/fv62Fq7xiBhPg6YHBkuWE/jicRDmWcbE22f/eIc"
	cases := []struct{ name, hash, wantErr string }{
		{"empty", "", "empty hash"},
		{"plain text", "secret", "unsupported hash"},
		{"md5 crypt", "$1$abc$def", "unsupported hash"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key, "unsupported hash"},
		{"too few fields", "$argon2id$v=19$m=19456,t=2,p=1$" + salt, "want $argon2id$"},
		{"old version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key, "version"},
		{"missing parameter", "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key, "want parameters m, t and p"},
		{"unknown parameter", "$argon2id$v=19$m=19456,t=2,p=1,x=3$" + salt + "$" + key, "unknown parameter"},
		{"not a number", "$argon2id$v=19$m=lots,t=2,p=1$" + salt + "$" + key, "not a number"},
		{"zero time", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key, "t=0"},
		{"huge memory", "$argon2id$v=19$m=4000000,t=2,p=1$" + salt + "$" + key, "m=4000000"},
		{"bad salt", "$argon2id$v=19$m=19456,t=2,p=1$!!!$" + key, "salt"},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$AAAA", "hash: want"},
		{"bad bcrypt", "$2b$xx$abc", "bcrypt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHash(tc.hash)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("parseHash(%q) error %v, want one containing %q", tc.hash, err, tc.wantErr)
			}
		})
	}
}

func TestBcryptRefusesLongPassword(t *testing.T) {
	// bcrypt ignores bytes beyond 72; refusing is better than a password
	// that is silently shorter than the user thinks.
	if _, err := HashPassword(strings.Repeat("x", 73), Bcrypt); err == nil {
		t.Fatal("73-byte bcrypt password accepted")
	}
}
