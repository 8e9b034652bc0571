// Package session issues, validates and revokes browser sessions.
//
// A session is an opaque random ID in a cookie (HMAC-tagged so garbage
// never reaches the store); the store keeps only a hash of it. Validation
// is served from a per-instance cache, so a signed-in request costs no
// store round trip; revocations are published on the backend's pub/sub
// channel so every instance drops the session from its cache at once.
package session
