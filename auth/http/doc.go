// Package httpauth asks an HTTP service who may connect, with which client
// ids, and what they may do, like the HTTP backends of mosquitto-go-auth
// and EMQX.
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
// Client ids: POST ClientIDURL, once per CONNECT, with
//
//	{"clientid": "...", "username": "...", "anonymous": false, "cert": false,
//	 "remote_addr": "203.0.113.7:51234", "protocol_version": 5}
//
// (anonymous: the client has no username; cert: the username is the name
// in its verified certificate). A persistent session belongs to the
// identity that made it; the answer says whether this one may use the id:
//
//	200 {"result": "allow"}    granted, even where a session of another
//	                           identity holds the id (it then passes over)
//	200 {"result": "default"}  no opinion: usable unless another identity's
//	204 (no body)              session holds it
//	200 {"result": "deny"}     refused (CONNACK "client identifier not valid")
//	4xx (403, 404, ...)        refused
//
// The grant must be written out: a 200 without one of the three results
// (an empty body included) is an error, like any other status, a timeout
// or a network error, and the broker refuses the client with "server
// unavailable". With no ClientIDURL every id gets the default, unasked.
//
// Decisions (200, 401/403, for ACL and client ids any 4xx, 204 for client
// ids) are cached for CacheTTL, allowing ones and refusing ones alike;
// failures (5xx, a client id 200 without a result, timeouts, network
// errors) are not, so the next attempt asks again. The cache is bounded
// (oldest entries go first). Passwords are never kept: an authentication
// is cached under a SHA-256 digest of client id, username, password and
// the remote host, so a cached "yes" is only found by someone presenting
// the same password.
package httpauth
