// Package oidc is the OpenID Connect connector: the authorization code flow
// with PKCE (S256) and a nonce, verified with go-oidc.
//
// Besides what go-oidc checks (signature with an asymmetric algorithm the
// provider advertises, iss, aud, exp, nbf), Finish checks the nonce (in
// constant time), azp, Google's hd when configured, email_verified, and
// the RFC 9207 iss parameter of the authorization response when the IdP
// sends it (mix-up defence). The client secret is never logged or
// returned in errors.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/store"
)

// HTTPTimeout bounds every request to the IdP when Config.HTTPClient has
// no timeout of its own.
const HTTPTimeout = 10 * time.Second

// Config is the gateway-side configuration of an OIDC connector.
type Config struct {
	// RedirectURL is the gateway's callback URL, registered at the IdP.
	// Build it from configuration, never from the request's Host.
	RedirectURL string
	// HTTPClient talks to the IdP (discovery, keys, token). Default: a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// Clock is used to check token expiry. Default: time.Now.
	Clock func() time.Time
	// Scopes requested; default openid, email, profile. "openid" is always
	// requested.
	Scopes []string
	// HostedDomain, if set, requires the hd claim to equal it (Google
	// Workspace) and is sent as the hd hint.
	HostedDomain string
	// GroupsClaim names the groups claim. Default: the connection's
	// GroupAttribute, else "groups".
	GroupsClaim string
}

// Connector is one OIDC connection. It is safe for concurrent use.
type Connector struct {
	issuer       string
	clientID     string
	hostedDomain string
	groupsClaim  string
	client       *http.Client
	oauth        *oauth2.Config // holds the client secret: never print it
	verifier     *gooidc.IDTokenVerifier
}

var _ connector.Connector = (*Connector)(nil)

// New discovers the IdP at conn.Issuer and returns its connector.
func New(ctx context.Context, conn *store.Connection, cfg Config) (*Connector, error) {
	if conn == nil || conn.Issuer == "" || conn.ClientID == "" {
		return nil, errors.New("oidc connector: issuer and client ID are required")
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("oidc connector: redirect URL %q is not an absolute URL", cfg.RedirectURL)
	}
	client := &http.Client{Timeout: HTTPTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		if c.Timeout == 0 {
			c.Timeout = HTTPTimeout
		}
		client = &c
	}
	dctx, cancel := context.WithTimeout(gooidc.ClientContext(ctx, client), HTTPTimeout)
	defer cancel()
	provider, err := gooidc.NewProvider(dctx, conn.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery for %s: %w", conn.Issuer, err)
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("OIDC discovery for %s: %w", conn.Issuer, err)
	}
	endpoint := provider.Endpoint()
	if endpoint.AuthURL == "" || endpoint.TokenURL == "" {
		return nil, fmt.Errorf("OIDC discovery for %s: no authorization or token endpoint", conn.Issuer)
	}
	// client_secret_basic is the default when the IdP does not say.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") &&
		slices.Contains(meta.AuthMethods, "client_secret_post") {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "email", "profile"}
	}
	if !slices.Contains(scopes, gooidc.ScopeOpenID) {
		scopes = append([]string{gooidc.ScopeOpenID}, scopes...)
	}
	groupsClaim := cfg.GroupsClaim
	if groupsClaim == "" {
		groupsClaim = conn.GroupAttribute
	}
	if groupsClaim == "" {
		groupsClaim = "groups"
	}
	return &Connector{
		issuer:       conn.Issuer,
		clientID:     conn.ClientID,
		hostedDomain: cfg.HostedDomain,
		groupsClaim:  groupsClaim,
		client:       client,
		oauth: &oauth2.Config{
			ClientID:     conn.ClientID,
			ClientSecret: conn.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       slices.Clone(scopes),
		},
		verifier: provider.Verifier(&gooidc.Config{ClientID: conn.ClientID, Now: cfg.Clock}),
	}, nil
}

// String keeps the secret out of %v and %+v.
func (c *Connector) String() string { return "oidc connector for " + c.issuer }

// GoString keeps the secret out of %#v.
func (c *Connector) GoString() string { return c.String() }

// Issuer returns the IdP's issuer.
func (c *Connector) Issuer() string { return c.issuer }

// Begin starts a sign-in: a fresh nonce (256 bits) and PKCE verifier, and
// the authorization URL carrying state, nonce and the S256 challenge.
func (c *Connector) Begin(ctx context.Context, state, loginHint string) (*connector.Begun, error) {
	if state == "" {
		return nil, errors.New("oidc connector: empty state")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("oidc connector: nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	if c.hostedDomain != "" {
		opts = append(opts, oauth2.SetAuthURLParam("hd", c.hostedDomain))
	}
	return &connector.Begun{
		RedirectURL:  c.oauth.AuthCodeURL(state, opts...),
		Nonce:        nonce,
		PKCEVerifier: verifier,
	}, nil
}

// Finish checks the callback request against begun, redeems the code and
// verifies the ID token. Refusals are *connector.Error.
func (c *Connector) Finish(ctx context.Context, r *http.Request, begun *connector.Begun) (*connector.Identity, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, connector.Refuse("idp_error",
			fmt.Errorf("IdP returned error %q: %s", clip(e), clip(q.Get("error_description"))))
	}
	if q.Get("state") == "" {
		return nil, connector.Refuse("state", errors.New("callback has no state"))
	}
	if begun == nil || begun.Nonce == "" || begun.PKCEVerifier == "" {
		return nil, connector.Refuse("state", errors.New("no nonce or PKCE verifier kept for this state"))
	}
	// RFC 9207: an IdP that names itself in the response must be ours.
	if q.Has("iss") && q.Get("iss") != c.issuer {
		return nil, connector.Refuse("issuer",
			fmt.Errorf("authorization response from issuer %q, expected %q", clip(q.Get("iss")), c.issuer))
	}
	code := q.Get("code")
	if code == "" {
		return nil, connector.Refuse("malformed", errors.New("callback has no code"))
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.client)
	tok, err := c.oauth.Exchange(ctx, code, oauth2.VerifierOption(begun.PKCEVerifier))
	if err != nil {
		return nil, connector.Refuse("code_exchange", exchangeError(err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, connector.Refuse("malformed", errors.New("token response has no id_token"))
	}
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, connector.Refuse(verifyReason(err), err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(begun.Nonce)) != 1 {
		return nil, connector.Refuse("nonce", errors.New("ID token nonce does not match the request"))
	}
	return c.identity(idt)
}

// exchangeError keeps the IdP's answer but drops anything else the token
// request carried.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Errorf("token endpoint: %s: %s", clip(re.ErrorCode), clip(re.ErrorDescription))
		}
		status := "no response"
		if re.Response != nil {
			status = re.Response.Status
		}
		return fmt.Errorf("token endpoint: %s: %s", status, clip(string(re.Body)))
	}
	return fmt.Errorf("token endpoint: %w", err)
}

// clip bounds IdP-supplied text that ends up in logs.
func clip(s string) string {
	const limit = 300
	if len(s) > limit {
		return strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return s
}
