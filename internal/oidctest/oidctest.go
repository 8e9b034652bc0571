// Package oidctest runs a small but real OpenID Provider for tests: the
// OP of internal/idp/oidcidp on a loopback port, closed when the test
// ends.
//
// The OP speaks the authorization code flow: discovery, a JWKS, /authorize
// and /token. Tokens are really signed (RS256, go-jose) and codes are
// really single use, bound to their client, redirect URI, nonce and PKCE
// challenge, so relying parties are tested against the protocol rather
// than against hand-made tokens. The user who signs in is the one named by
// login_hint, or SetNextUser; attack knobs (SetSigning,
// SetClaimsOverride, RotateKey, DropOldKeys) are documented in oidcidp.
package oidctest

import (
	"testing"

	"github.com/ssogate/ssogate/internal/idp/oidcidp"
)

// CodeTTL is how long an authorization code can be redeemed.
const CodeTTL = oidcidp.CodeTTL

// IDTokenTTL is the lifetime of the ID tokens the OP issues.
const IDTokenTTL = oidcidp.IDTokenTTL

// User is an account at the OP.
type User = oidcidp.User

// Signing selects how the OP signs ID tokens.
type Signing = oidcidp.Signing

// Signing modes (see oidcidp).
const (
	SignRS256              = oidcidp.SignRS256
	SignNone               = oidcidp.SignNone
	SignHS256WithPublicKey = oidcidp.SignHS256WithPublicKey
	SignUnpublishedKey     = oidcidp.SignUnpublishedKey
)

// OP is a running OpenID Provider. Its methods are safe for concurrent use.
type OP = oidcidp.OP

// Start runs an OP on a free loopback port, closed when the test ends.
func Start(t testing.TB) *OP {
	t.Helper()
	op, err := oidcidp.Start(oidcidp.Options{})
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	t.Cleanup(func() { _ = op.Close() })
	return op
}
