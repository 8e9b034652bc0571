// Package oidctest runs a small but real OpenID Provider for tests.
//
// The OP speaks the authorization code flow over HTTP on a loopback
// httptest server: discovery, a JWKS, /authorize and /token. Tokens are
// really signed (RS256, go-jose) and codes are really single use, bound to
// their client, redirect URI, nonce and PKCE challenge, so relying parties
// are tested against the protocol rather than against hand-made tokens.
//
// The OP is strict on purpose: /authorize requires response_type=code,
// scope openid, state, nonce and a PKCE S256 challenge, and /token requires
// client authentication (client_secret_basic or client_secret_post), the
// same redirect_uri and the matching code_verifier.
//
// Knobs for attack tests (all apply to the tokens issued after the call):
//
//   - SetSigning(SignNone) issues unsigned "alg: none" tokens;
//     SetSigning(SignHS256WithPublicKey) issues HS256 tokens keyed with the
//     PEM encoding of the OP's RSA public key (key confusion);
//     SetSigning(SignUnpublishedKey) signs with a key absent from the JWKS.
//   - SetClaimsOverride sets or, with a nil value, deletes ID token claims
//     (wrong iss, aud, azp, a past exp, another nonce, no email_verified…).
//   - RotateKey starts signing with a new key; DropOldKeys unpublishes the
//     previous ones.
//
// Authorization responses carry the RFC 9207 "iss" parameter.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// CodeTTL is how long an authorization code can be redeemed.
const CodeTTL = 60 * time.Second

// IDTokenTTL is the lifetime of the ID tokens the OP issues.
const IDTokenTTL = 10 * time.Minute

// User is an account at the OP.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	// HostedDomain is sent as Google's "hd" claim when set.
	HostedDomain string
	// Groups is sent as the "groups" claim when not empty.
	Groups []string
	// Extra claims are added to the ID token as they are (after the
	// standard ones, so they may replace them).
	Extra map[string]any
}

// Signing selects how the OP signs ID tokens.
type Signing int

// Signing modes.
const (
	// SignRS256 is the normal mode: RS256 with the current key, with its kid.
	SignRS256 Signing = iota
	// SignNone issues unsecured tokens: header alg "none", empty signature.
	SignNone
	// SignHS256WithPublicKey issues HS256 tokens whose HMAC key is the PEM
	// encoding of the OP's current RSA public key (the key-confusion attack
	// on verifiers that take the algorithm from the token).
	SignHS256WithPublicKey
	// SignUnpublishedKey signs RS256 with a key that is not in the JWKS,
	// under the current key's kid (a forged token).
	SignUnpublishedKey
)

type client struct {
	id, secret string
	redirects  []string
}

type authCode struct {
	clientID, redirectURI string
	challenge, nonce      string
	subject               string
	issued                time.Time
	used                  bool
}

type signingKey struct {
	id   string
	priv *rsa.PrivateKey
}

// OP is a running OpenID Provider. Its methods are safe for concurrent use.
type OP struct {
	srv *httptest.Server

	mu       sync.Mutex
	keys     []*signingKey // keys[0] signs; all are published
	clients  map[string]*client
	users    map[string]*User // by subject
	nextUser string
	codes    map[string]*authCode
	signing  Signing
	override map[string]any
	now      func() time.Time
	lastAuth url.Values
}

// Start runs an OP on a loopback httptest server, closed when the test ends.
func Start(t testing.TB) *OP {
	t.Helper()
	op := &OP{
		clients: map[string]*client{},
		users:   map[string]*User{},
		codes:   map[string]*authCode{},
		now:     time.Now,
	}
	k, err := newKey()
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	op.keys = []*signingKey{k}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("/keys", op.jwks)
	mux.HandleFunc("/authorize", op.authorize)
	mux.HandleFunc("/token", op.token)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// Issuer is the OP's issuer: its server URL, exactly (no trailing slash).
func (op *OP) Issuer() string { return op.srv.URL }

// HTTPClient returns a client for talking to the OP.
func (op *OP) HTTPClient() *http.Client { return op.srv.Client() }

// AddClient registers (or replaces) a confidential client.
func (op *OP) AddClient(id, secret string, redirectURIs ...string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.clients[id] = &client{id: id, secret: secret, redirects: append([]string(nil), redirectURIs...)}
}

// AddUser registers (or replaces, by Subject) a user.
func (op *OP) AddUser(u User) {
	op.mu.Lock()
	defer op.mu.Unlock()
	u.Groups = append([]string(nil), u.Groups...)
	op.users[u.Subject] = &u
}

// SetNextUser names (by subject) the user who signs in when an authorize
// request has no login_hint matching a registered user. "" means nobody:
// such requests then end with error=access_denied, as if the user gave up.
func (op *OP) SetNextUser(subject string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.nextUser = subject
}

// SetSigning selects how the next ID tokens are signed.
func (op *OP) SetSigning(s Signing) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.signing = s
}

// SetClaimsOverride sets claims on the next ID tokens, after every other
// claim: a nil value deletes the claim. SetClaimsOverride(nil) resets.
func (op *OP) SetClaimsOverride(claims map[string]any) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.override = make(map[string]any, len(claims))
	for k, v := range claims {
		op.override[k] = v
	}
}

// SetClock sets the OP's clock (code expiry, iat, exp). nil means time.Now.
func (op *OP) SetClock(now func() time.Time) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	op.now = now
}

// RotateKey makes a new RSA key the signing key (with a new kid). The
// previous keys stay in the JWKS until DropOldKeys.
func (op *OP) RotateKey() error {
	k, err := newKey()
	if err != nil {
		return err
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	op.keys = append([]*signingKey{k}, op.keys...)
	return nil
}

// DropOldKeys removes every key but the signing key from the JWKS.
func (op *OP) DropOldKeys() {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.keys = op.keys[:1]
}

// LastAuthorizeRequest returns the query of the last /authorize request.
func (op *OP) LastAuthorizeRequest() url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	v := url.Values{}
	for k, vs := range op.lastAuth {
		v[k] = append([]string(nil), vs...)
	}
	return v
}

// Login plays the browser: it GETs authURL (the relying party's
// authorization request to this OP) and returns where the OP redirects,
// without following it — normally the relying party's callback with code
// and state. It fails when the OP does not redirect (unknown client or
// redirect URI).
func (op *OP) Login(authURL string) (*url.URL, error) {
	c := *op.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(authURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("oidctest: authorize answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("oidctest: authorize redirect: %w", err)
	}
	return loc, nil
}

func newKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	return &signingKey{id: randString(8), priv: priv}, nil
}

func randString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// userFor returns the user an authorize request signs in. Call with mu held.
func (op *OP) userFor(loginHint string) (*User, error) {
	if loginHint != "" {
		for _, u := range op.users {
			if u.Subject == loginHint || (u.Email != "" && strings.EqualFold(u.Email, loginHint)) {
				return u, nil
			}
		}
	}
	if op.nextUser == "" {
		return nil, errors.New("no user signed in")
	}
	u, ok := op.users[op.nextUser]
	if !ok {
		return nil, fmt.Errorf("next user %q is not registered", op.nextUser)
	}
	return u, nil
}
