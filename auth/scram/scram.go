package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Method is the MQTT Authentication Method name.
const Method = "SCRAM-SHA-256"

const (
	// MinIterations is the least PBKDF2 iteration count either side
	// accepts (RFC 7677 section 4): fewer makes stolen credentials cheap
	// to brute-force.
	MinIterations = 4096
	// MaxIterations bounds what a client agrees to compute, so a hostile
	// server cannot make it spin for minutes.
	MaxIterations = 10_000_000
	// DefaultIterations is a sensible count for NewCredentials and the
	// count a Server advertises for unknown users unless told otherwise.
	DefaultIterations = MinIterations

	saltLen = 16
	keyLen  = sha256.Size
	// maxMessage bounds every SCRAM message; real ones are ~100-200 bytes.
	maxMessage = 4096
)

// b64 is strict so that each value has exactly one encoding: the proof
// and signature bytes cannot be re-spelled.
var b64 = base64.StdEncoding.Strict()

// Credentials are what the server stores per user instead of a password
// (RFC 5802 section 3).
type Credentials struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// NewCredentials derives credentials for password with a random 16-byte
// salt and the given iteration count (at least MinIterations).
func NewCredentials(password string, iterations int) (Credentials, error) {
	if iterations < MinIterations {
		return Credentials{}, fmt.Errorf("scram: %d iterations, need at least %d", iterations, MinIterations)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails (Go 1.24+ crashes instead)
	return deriveCredentials(password, salt, iterations)
}

func deriveCredentials(password string, salt []byte, iterations int) (Credentials, error) {
	salted, err := saltPassword(password, salt, iterations)
	if err != nil {
		return Credentials{}, err
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return Credentials{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  stored[:],
		ServerKey:  mac(salted, "Server Key"),
	}, nil
}

func saltPassword(password string, salt []byte, iterations int) ([]byte, error) {
	k, err := pbkdf2.Key(sha256.New, password, salt, iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("scram: pbkdf2: %w", err)
	}
	return k, nil
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// valid reports whether the credentials can be used by a Server.
func (c Credentials) valid() error {
	switch {
	case len(c.Salt) == 0:
		return errors.New("empty salt")
	case c.Iterations < MinIterations:
		return fmt.Errorf("%d iterations, need at least %d", c.Iterations, MinIterations)
	case len(c.StoredKey) != keyLen || len(c.ServerKey) != keyLen:
		return fmt.Errorf("keys must be %d bytes", keyLen)
	}
	return nil
}

const textPrefix = "SCRAM-SHA-256$"

// MarshalText encodes the credentials in the format PostgreSQL stores:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, base64.
// It suits a password file line.
func (c Credentials) MarshalText() ([]byte, error) {
	if err := c.valid(); err != nil {
		return nil, fmt.Errorf("scram: %v", err)
	}
	e := base64.StdEncoding
	return []byte(textPrefix + strconv.Itoa(c.Iterations) + ":" + e.EncodeToString(c.Salt) +
		"$" + e.EncodeToString(c.StoredKey) + ":" + e.EncodeToString(c.ServerKey)), nil
}

// UnmarshalText parses the MarshalText format.
func (c *Credentials) UnmarshalText(text []byte) error {
	bad := func(why string) error { return fmt.Errorf("scram: bad credentials text: %s", why) }
	s, ok := strings.CutPrefix(string(text), textPrefix)
	if !ok {
		return bad("missing " + textPrefix + " prefix")
	}
	params, keys, ok := strings.Cut(s, "$")
	if !ok {
		return bad("missing $")
	}
	iter, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return bad("missing :")
	}
	var v Credentials
	var err error
	if v.Iterations, err = strconv.Atoi(iter); err != nil {
		return bad("iterations")
	}
	e := base64.StdEncoding
	if v.Salt, err = e.DecodeString(salt); err != nil {
		return bad("salt")
	}
	if v.StoredKey, err = e.DecodeString(stored); err != nil {
		return bad("StoredKey")
	}
	if v.ServerKey, err = e.DecodeString(server); err != nil {
		return bad("ServerKey")
	}
	if err := v.valid(); err != nil {
		return bad(err.Error())
	}
	*c = v
	return nil
}

// escapeName encodes a user name as a SCRAM saslname: ',' and '=' would
// otherwise be read as syntax (RFC 5802 section 5.1).
func escapeName(name string) string {
	if !strings.ContainsAny(name, ",=") {
		return name
	}
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(name)
}

// unescapeName decodes a saslname. Only =2C and =3D may follow '='; the
// result must be non-empty UTF-8 without control characters, which is the
// part of SASLprep that matters for lookups and logs.
func unescapeName(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty user name")
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1 : min(i+3, len(s))] {
		case "2C":
			b.WriteByte(',')
		case "3D":
			b.WriteByte('=')
		default:
			return "", errors.New("user name: '=' not followed by 2C or 3D")
		}
		i += 2
	}
	name := b.String()
	if !utf8.ValidString(name) {
		return "", errors.New("user name is not UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", errors.New("user name contains a control character")
		}
	}
	return name, nil
}

// validNonce checks RFC 5802's printable: %x21-2B / %x2D-7E (no comma).
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

type attr struct {
	key byte
	val string
}

// parseAttrs splits "a=v,b=w,..." into attributes. Keys are one ASCII
// letter (RFC 5802 attr-val); values may contain '=' (base64) but not ','.
func parseAttrs(msg string) ([]attr, error) {
	if len(msg) > maxMessage {
		return nil, fmt.Errorf("message longer than %d bytes", maxMessage)
	}
	if msg == "" {
		return nil, errors.New("empty message")
	}
	parts := strings.Split(msg, ",")
	attrs := make([]attr, len(parts))
	for i, p := range parts {
		if len(p) < 2 || p[1] != '=' || !isAlpha(p[0]) {
			return nil, fmt.Errorf("attribute %d is not of the form x=value", i+1)
		}
		attrs[i] = attr{p[0], p[2:]}
	}
	return attrs, nil
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// want checks that attrs[i] exists and has key k.
func want(attrs []attr, i int, k byte) (string, error) {
	if i >= len(attrs) || attrs[i].key != k {
		return "", fmt.Errorf("attribute %d: want %c=", i+1, k)
	}
	return attrs[i].val, nil
}
