// Package auth defines how the broker asks who a client is
// (Authenticator) and what it may do (Authorizer), and ships the simple
// implementations: a static user table with an anonymous switch, and
// allow-all authorization. Richer backends (password and ACL files, HTTP)
// live in sub-packages and satisfy the same interfaces.
package auth
