// Package oidcidp runs a small but real OpenID Provider: the OIDC IdP of
// `ssogate demo` and, through internal/oidctest, of the tests.
//
// The OP speaks the authorization code flow over HTTP on loopback:
// discovery, a JWKS, /authorize and /token. Tokens are
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
package oidcidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CodeTTL is how long an authorization code can be redeemed.
const CodeTTL = 60 * time.Second

// IDTokenTTL is the lifetime of the ID tokens the OP issues.
const IDTokenTTL = 10 * time.Minute

// User is an account at the OP.
type User struct {
	Subject string
	// Password is what the user types on the sign-in form (Options.LoginForm).
	Password      string
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

// allows reports whether the client registered redirect. A registered URI
// may hold one "*", which stands for one non-empty path segment of
// letters, digits, "-" and "_" (ssogate's redirect URIs name their
// connection: …/oidc/{id}/callback).
func (c *client) allows(redirect string) bool {
	for _, r := range c.redirects {
		if r == redirect {
			return true
		}
		pre, suf, ok := strings.Cut(r, "*")
		if !ok || !strings.HasPrefix(redirect, pre) || !strings.HasSuffix(redirect, suf) || len(redirect) <= len(pre)+len(suf) {
			continue
		}
		mid := redirect[len(pre) : len(redirect)-len(suf)]
		if strings.IndexFunc(mid, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) < 0 {
			return true
		}
	}
	return false
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

// Options tune the OP.
type Options struct {
	// Listener to serve on; default a new one on 127.0.0.1:0.
	Listener net.Listener
	// LoginForm makes /authorize show a sign-in form (email and password)
	// instead of signing in the login_hint or next user at once.
	LoginForm bool
	// Name is shown on the sign-in form. Default: "OpenID Provider".
	Name string
}

// OP is a running OpenID Provider. Its methods are safe for concurrent use.
type OP struct {
	srv      *http.Server
	issuer   string
	client   *http.Client
	serveErr chan error
	form     bool
	name     string
	cop      *http.CrossOriginProtection

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

// Start runs an OP until Close.
func Start(opts Options) (*OP, error) {
	op := &OP{
		clients:  map[string]*client{},
		users:    map[string]*User{},
		codes:    map[string]*authCode{},
		now:      time.Now,
		form:     opts.LoginForm,
		name:     opts.Name,
		cop:      http.NewCrossOriginProtection(),
		client:   &http.Client{Timeout: 10 * time.Second},
		serveErr: make(chan error, 1),
	}
	if op.name == "" {
		op.name = "OpenID Provider"
	}
	k, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("oidcidp: %w", err)
	}
	op.keys = []*signingKey{k}
	l := opts.Listener
	if l == nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("oidcidp: listening: %w", err)
		}
	}
	op.issuer = "http://" + l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("/keys", op.jwks)
	mux.HandleFunc("/authorize", op.authorize)
	mux.HandleFunc("/token", op.token)
	op.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { op.serveErr <- op.srv.Serve(l) }()
	return op, nil
}

// Close stops the server.
func (op *OP) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := op.srv.Shutdown(ctx)
	if err != nil {
		_ = op.srv.Close()
	}
	if serr := <-op.serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Issuer is the OP's issuer: its server URL, exactly (no trailing slash).
func (op *OP) Issuer() string { return op.issuer }

// HTTPClient returns a client for talking to the OP.
func (op *OP) HTTPClient() *http.Client { return op.client }

// AddClient registers (or replaces) a confidential client. A redirect URI
// may hold one "*" for one path segment (see client.allows).
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

// RemoveUser deletes the user with this subject or email; it reports
// whether there was one. Codes issued to them can no longer be redeemed.
func (op *OP) RemoveUser(subjectOrEmail string) bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	for sub, u := range op.users {
		if sub == subjectOrEmail || (u.Email != "" && strings.EqualFold(u.Email, subjectOrEmail)) {
			delete(op.users, sub)
			return true
		}
	}
	return false
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
// redirect URI, or the sign-in form of Options.LoginForm, which a browser
// fills in).
func (op *OP) Login(authURL string) (*url.URL, error) {
	c := *op.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(authURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("oidcidp: authorize answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("oidcidp: authorize redirect: %w", err)
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
