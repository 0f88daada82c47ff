package jsstore

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// Key kinds: the first token of a key.
const (
	kindSession  = "s"
	kindSessionP = "p" // per-session records
	kindMessage  = "m"
	kindRetained = "r"
	kindCursor   = "n" // a node's position in a stream (PutCursor)

	subSubscription = "u"
	subOutbound     = "o"
	subInbound      = "q"
)

// maxToken bounds an encoded name: longer names are hashed, so that a key
// stays well within NATS's control line limit. The value carries the
// name itself.
const maxToken = 128

// token encodes a client id, filter or topic as one subject token
// matching the key-value key alphabet. base64url never yields a
// one-character token or '=', so "_" (empty) and "=" + hash (long) cannot
// collide with an encoded name.
func token(s string) string {
	if s == "" {
		return "_"
	}
	if base64.RawURLEncoding.EncodedLen(len(s)) > maxToken {
		h := sha256.Sum256([]byte(s))
		return "=" + base64.RawURLEncoding.EncodeToString(h[:])
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func sessionKey(cid string) string { return kindSession + "." + token(cid) }

// genPrefix is the start of every per-session key of one generation.
func genPrefix(ctok, gen string) string { return kindSessionP + "." + ctok + "." + gen + "." }

func subscriptionKey(cid, gen, filter string) string {
	return genPrefix(token(cid), gen) + subSubscription + "." + token(filter)
}

func outboundKey(cid, gen string, seq uint64) string {
	return genPrefix(token(cid), gen) + subOutbound + "." + strconv.FormatUint(seq, 16)
}

func inboundKey(cid, gen string, id uint16) string {
	return genPrefix(token(cid), gen) + subInbound + "." + strconv.FormatUint(uint64(id), 16)
}

func messageKey(id string) string { return kindMessage + "." + id }

func retainedKey(topic string) string { return kindRetained + "." + token(topic) }

func cursorKey(node string) string { return kindCursor + "." + token(node) }

// parsedKey is a key split into its parts; kind "" for a key this store
// does not write.
type parsedKey struct {
	kind string // kindSession, kindSessionP, kindMessage, kindRetained
	ctok string // client token (s, p); topic token (r)
	gen  string // p
	sub  string // p: subSubscription, subOutbound, subInbound
	rest string // p: the filter token, seq or id; m: the message id
}

func parseKey(k string) parsedKey {
	kind, rest, ok := strings.Cut(k, ".")
	if !ok || rest == "" {
		return parsedKey{}
	}
	switch kind {
	case kindSession, kindRetained:
		if strings.Contains(rest, ".") {
			return parsedKey{}
		}
		return parsedKey{kind: kind, ctok: rest}
	case kindMessage, kindCursor:
		return parsedKey{kind: kind, rest: rest}
	case kindSessionP:
		parts := strings.SplitN(rest, ".", 4)
		if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[3] == "" || strings.Contains(parts[3], ".") {
			return parsedKey{}
		}
		switch parts[2] {
		case subSubscription, subOutbound, subInbound:
			return parsedKey{kind: kind, ctok: parts[0], gen: parts[1], sub: parts[2], rest: parts[3]}
		}
	}
	return parsedKey{}
}

// messageNode returns the node that wrote message id and its instance.
func messageNode(id string) (node, instance string) {
	node, rest, _ := strings.Cut(id, ".")
	instance, _, _ = strings.Cut(rest, ".")
	return node, instance
}

// validName reports whether s is a non-empty token of letters, digits,
// '-' and '_': node names, instances and generations.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validGen(g string) bool { return validName(g) }

// validMessageID reports whether id is node.instance.n.
func validMessageID(id string) bool {
	parts := strings.Split(id, ".")
	return len(parts) == 3 && validName(parts[0]) && validName(parts[1]) && validName(parts[2])
}
