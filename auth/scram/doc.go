// Package scram implements the SCRAM-SHA-256 SASL mechanism (RFC 5802,
// RFC 7677) as an MQTT 5.0 enhanced authentication method: a Server that
// satisfies auth.EnhancedAuthenticator for the broker, and a Client for
// the other end.
//
// The server never sees or stores passwords: it keeps per-user
// Credentials (salt, iteration count, StoredKey, ServerKey), and a leaked
// credential store does not let anyone log in without brute-forcing
// PBKDF2. The successful exchange also proves the server knows the
// credentials (server-final-message), so a client can detect an impostor
// broker.
//
// Message flow, one MQTT packet each:
//
//	CONNECT  Authentication Data: client-first-message  n,,n=user,r=cnonce
//	AUTH 0x18 from server:        server-first-message  r=cnonce+snonce,s=salt,i=4096
//	AUTH 0x18 from client:        client-final-message  c=biws,r=...,p=proof
//	CONNACK 0x00 (or AUTH 0x00):  server-final-message  v=signature
//
// Deliberate limits: no channel binding (gs2 header "n,," or "y,,"; "p="
// is refused), no authorization identity, and no SASLprep: user names
// must be valid UTF-8 without control characters, and passwords are
// hashed as the exact bytes given, which is what SASLprep would produce
// for ASCII. Unknown users get a deterministic fake salt so that the
// exchange looks the same as for a real user and fails only at the proof.
package scram
