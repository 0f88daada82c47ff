// Package httpauth asks an HTTP service who may connect and what they may
// do, like the HTTP backends of mosquitto-go-auth and EMQX.
//
// Authentication: POST AuthURL with a JSON body
//
//	{"clientid": "...", "username": "...", "password": "...",
//	 "remote_addr": "203.0.113.7:51234", "protocol_version": 5}
//
// 200 accepts the client; 401 answers auth.ErrBadCredentials and 403
// auth.ErrNotAuthorized. Any other status, a timeout or a network error is
// an error (the broker answers "server unavailable"): an unreachable
// service never lets anyone in.
//
// Authorization: POST ACLURL with
//
//	{"clientid": "...", "username": "...", "topic": "...", "action": "publish|subscribe|read"}
//
// 200 allows, anything else denies: it fails closed. Authorize has no
// context, so each request is bounded by Config.Timeout. With no ACLURL
// everything is allowed.
//
// Decisions (200, 401/403, and for ACL any 4xx) are cached for CacheTTL,
// allowing ones and refusing ones alike; failures (5xx, timeouts, network
// errors) are not, so the next attempt asks again. The cache is bounded
// (oldest entries go first). Passwords are never kept: an authentication
// is cached under a SHA-256 digest of client id, username, password and
// the remote host, so a cached "yes" is only found by someone presenting
// the same password.
package httpauth
