package scram

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
)

// ErrServerSignature means the server-final-message did not prove that the
// server knows the user's credentials: it may be an impostor.
var ErrServerSignature = errors.New("scram: server signature mismatch")

// gs2Header is the only header the client sends: no channel binding, no
// authorization identity. "biws" is its base64.
const gs2Header = "n,,"

// Client is the client side of one SCRAM-SHA-256 exchange: First for the
// CONNECT (or AUTH 0x19), Final for the server's AUTH 0x18, Verify for the
// CONNACK (or AUTH 0x00). Use a new Client per exchange; not safe for
// concurrent use.
type Client struct {
	username, password string
	nonce              func() string // tests make it fixed

	bare      string // client-first-message-bare, once First ran
	cnonce    string
	serverSig []byte // expected ServerSignature, once Final succeeded
	verified  bool
}

// NewClient returns a client that authenticates as username with password.
// The password is used as is (no SASLprep; see the package comment).
func NewClient(username, password string) *Client {
	return &Client{username: username, password: password, nonce: rand.Text}
}

// First returns client-first-message, the CONNECT's Authentication Data.
// Calling it again returns the same message.
func (c *Client) First() []byte {
	if c.bare == "" {
		c.cnonce = c.nonce()
		c.bare = "n=" + escapeName(c.username) + ",r=" + c.cnonce
	}
	return []byte(gs2Header + c.bare)
}

// Final checks server-first-message and returns client-final-message, the
// data for the client's AUTH 0x18. It runs PBKDF2 with the server's
// iteration count, bounded by MinIterations and MaxIterations.
func (c *Client) Final(serverFirst []byte) ([]byte, error) {
	if c.bare == "" {
		return nil, errors.New("scram: Final before First")
	}
	if c.serverSig != nil {
		return nil, errors.New("scram: Final called twice")
	}
	sf := string(serverFirst)
	nonce, salt, iter, err := parseServerFirst(sf)
	if err != nil {
		return nil, fmt.Errorf("scram: server-first-message: %w", err)
	}
	// The server must extend our nonce, not replace it: that is what makes
	// the proof fresh (replay protection).
	if len(nonce) <= len(c.cnonce) || subtle.ConstantTimeCompare([]byte(nonce[:len(c.cnonce)]), []byte(c.cnonce)) != 1 {
		return nil, errors.New("scram: server-first-message: nonce does not extend ours")
	}
	salted, err := saltPassword(c.password, salt, iter)
	if err != nil {
		return nil, err
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=" + b64.EncodeToString([]byte(gs2Header)) + ",r=" + nonce
	authMsg := c.bare + "," + sf + "," + withoutProof
	proof := make([]byte, keyLen)
	subtle.XORBytes(proof, clientKey, mac(storedKey[:], authMsg))
	c.serverSig = mac(mac(salted, "Server Key"), authMsg)
	return []byte(withoutProof + ",p=" + b64.EncodeToString(proof)), nil
}

// parseServerFirst parses "r=nonce,s=salt,i=count[,ext...]".
func parseServerFirst(msg string) (nonce string, salt []byte, iter int, err error) {
	attrs, err := parseAttrs(msg)
	if err != nil {
		return "", nil, 0, err
	}
	if attrs[0].key == 'm' {
		return "", nil, 0, errors.New("mandatory extension not supported")
	}
	if nonce, err = want(attrs, 0, 'r'); err != nil {
		return "", nil, 0, err
	}
	if !validNonce(nonce) {
		return "", nil, 0, errors.New("bad nonce")
	}
	s, err := want(attrs, 1, 's')
	if err != nil {
		return "", nil, 0, err
	}
	if salt, err = b64.DecodeString(s); err != nil || len(salt) == 0 {
		return "", nil, 0, errors.New("bad salt")
	}
	i, err := want(attrs, 2, 'i')
	if err != nil {
		return "", nil, 0, err
	}
	// posit-number: no sign, no leading zero.
	iter, err = strconv.Atoi(i)
	if err != nil || i[0] < '1' || i[0] > '9' || iter < MinIterations || iter > MaxIterations {
		return "", nil, 0, fmt.Errorf("iteration count %q not in [%d, %d]", i, MinIterations, MaxIterations)
	}
	return nonce, salt, iter, nil
}

// Verify checks server-final-message (the CONNACK's or AUTH 0x00's
// Authentication Data). Only after it returns nil is the server known to
// hold the user's credentials.
func (c *Client) Verify(serverFinal []byte) error {
	if c.serverSig == nil {
		return errors.New("scram: Verify before Final")
	}
	if c.verified {
		return errors.New("scram: Verify called twice")
	}
	attrs, err := parseAttrs(string(serverFinal))
	if err != nil {
		return fmt.Errorf("scram: server-final-message: %w", err)
	}
	switch attrs[0].key {
	case 'e':
		return fmt.Errorf("scram: server error %q", attrs[0].val)
	case 'v':
		sig, err := b64.DecodeString(attrs[0].val)
		if err != nil || !hmac.Equal(sig, c.serverSig) {
			return ErrServerSignature
		}
		c.verified = true
		return nil
	}
	return errors.New("scram: server-final-message: want v= or e=")
}
