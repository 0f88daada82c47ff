package file

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Algorithm is a password hashing scheme.
type Algorithm uint8

const (
	Argon2id Algorithm = iota // the default
	Bcrypt
)

func (a Algorithm) String() string {
	switch a {
	case Argon2id:
		return "argon2id"
	case Bcrypt:
		return "bcrypt"
	}
	return "algorithm(" + strconv.Itoa(int(a)) + ")"
}

// OWASP's minimum argon2id parameters (Password Storage Cheat Sheet):
// 19 MiB of memory, 2 iterations, 1 degree of parallelism.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Bounds on parameters read from a file: wide enough for any sane
// setting, narrow enough that a typo cannot make one CONNECT take
// gigabytes or minutes.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 64
	minArgonKeyLen = 16
	maxArgonKeyLen = 64
)

var b64 = base64.RawStdEncoding

// HashPassword returns the encoded hash of pw for a password file:
// argon2id in PHC string form with a fresh random salt, or bcrypt at its
// default cost.
func HashPassword(pw string, algo Algorithm) (string, error) {
	switch algo {
	case Argon2id:
		salt := make([]byte, argonSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", err
		}
		key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
			argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
	case Bcrypt:
		// bcrypt reads only the first 72 bytes; GenerateFromPassword
		// refuses longer passwords rather than silently ignoring the rest.
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
		return string(h), err
	}
	return "", fmt.Errorf("unknown algorithm %v", algo)
}

// hash is a parsed password hash.
type hash interface {
	verify(pw []byte) bool
}

// parseHash recognises argon2id PHC strings and bcrypt hashes.
func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return nil, fmt.Errorf("bcrypt hash: %w", err)
		}
		return bcryptHash(s), nil
	case s == "":
		return nil, errors.New("empty hash")
	}
	return nil, errors.New("unsupported hash: want $argon2id$... or bcrypt $2a$/$2b$/$2y$...")
}

type argon2idHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseArgon2id parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
func parseArgon2id(s string) (*argon2idHash, error) {
	f := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(f) != 6 {
		return nil, errors.New("argon2id hash: want $argon2id$v=19$m=M,t=T,p=P$salt$hash")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("argon2id hash: version %q, want v=%d", f[2], argon2.Version)
	}
	var h argon2idHash
	var seen [3]bool
	for _, kv := range strings.Split(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("argon2id hash: parameter %q: not a number", kv)
		}
		switch k {
		case "m":
			h.memory, seen[0] = uint32(n), true
		case "t":
			h.time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("argon2id hash: parallelism %d, max 255", n)
			}
			h.threads, seen[2] = uint8(n), true
		default:
			return nil, fmt.Errorf("argon2id hash: unknown parameter %q", k)
		}
	}
	switch {
	case seen != [3]bool{true, true, true}:
		return nil, errors.New("argon2id hash: want parameters m, t and p")
	case h.time < 1 || h.time > maxArgonTime:
		return nil, fmt.Errorf("argon2id hash: t=%d, want 1..%d", h.time, maxArgonTime)
	case h.threads < 1:
		return nil, errors.New("argon2id hash: p=0, want at least 1")
	case h.memory < 8*uint32(h.threads) || h.memory > maxArgonMemory:
		return nil, fmt.Errorf("argon2id hash: m=%d, want %d..%d KiB", h.memory, 8*uint32(h.threads), maxArgonMemory)
	}
	var err error
	if h.salt, err = b64.DecodeString(f[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("argon2id hash: salt: want at least 8 bytes of unpadded base64")
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil || len(h.key) < minArgonKeyLen || len(h.key) > maxArgonKeyLen {
		return nil, fmt.Errorf("argon2id hash: hash: want %d..%d bytes of unpadded base64", minArgonKeyLen, maxArgonKeyLen)
	}
	return &h, nil
}

func (h *argon2idHash) verify(pw []byte) bool {
	got := argon2.IDKey(pw, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

type bcryptHash string

// verify compares in constant time (bcrypt does internally).
func (h bcryptHash) verify(pw []byte) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), pw) == nil
}

// dummyHash stands in for unknown users: verifying against it costs what
// verifying a default (argon2id) entry costs. It is made on first use,
// not at start, because it costs one hash computation.
var dummyHash = sync.OnceValue(func() hash {
	s, err := HashPassword("tern dummy password", Argon2id)
	if err != nil {
		panic(err) // only crypto/rand can fail, and it does not
	}
	h, err := parseArgon2id(s)
	if err != nil {
		panic(err)
	}
	return h
})
