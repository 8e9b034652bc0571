package oidc_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/connector/oidc"
	"github.com/ssogate/ssogate/internal/oidctest"
	"github.com/ssogate/ssogate/store"
)

const (
	callback = "https://gw.example.com/sso/oidc/callback"
	clientID = "gateway-client"
	secret   = "s3cret-never-shown"
)

var alice = oidctest.User{
	Subject: "alice-sub", Email: "alice@example.com", EmailVerified: true,
	Name: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell",
	Groups: []string{"eng", "ssogate-admins"}, Extra: map[string]any{"department": "R&D"},
}

type env struct {
	op *oidctest.OP
	c  *oidc.Connector
}

// newEnv starts an OP with our client and alice, and a connector for it.
func newEnv(t *testing.T, cfg oidc.Config) *env {
	t.Helper()
	op := oidctest.Start(t)
	op.AddClient(clientID, secret, callback)
	op.AddUser(alice)
	return &env{op: op, c: newConnector(t, op, cfg)}
}

func newConnector(t *testing.T, op *oidctest.OP, cfg oidc.Config) *oidc.Connector {
	t.Helper()
	cfg.RedirectURL = callback
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = op.HTTPClient()
	}
	conn := &store.Connection{ID: "conn1", Type: store.ConnOIDC, Issuer: op.Issuer(),
		ClientID: clientID, ClientSecret: secret}
	c, err := oidc.New(context.Background(), conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// begin starts a sign-in for alice and plays the browser at the OP; it
// returns what the gateway keeps and the callback request.
func (e *env) begin(t *testing.T) (*connector.Begun, *http.Request) {
	t.Helper()
	begun, err := e.c.Begin(context.Background(), "state-123", alice.Email)
	if err != nil {
		t.Fatal(err)
	}
	return begun, e.login(t, begun)
}

func (e *env) login(t *testing.T, begun *connector.Begun) *http.Request {
	t.Helper()
	loc, err := e.op.Login(begun.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), callback+"?") {
		t.Fatalf("OP redirected to %s, want the callback", loc)
	}
	return httptest.NewRequest(http.MethodGet, loc.String(), nil)
}

func (e *env) signIn(t *testing.T) (*connector.Identity, error) {
	t.Helper()
	begun, req := e.begin(t)
	return e.c.Finish(context.Background(), req, begun)
}

func TestSignIn(t *testing.T) {
	e := newEnv(t, oidc.Config{})
	begun, req := e.begin(t)
	if req.URL.Query().Get("state") != "state-123" {
		t.Errorf("callback state = %q", req.URL.Query().Get("state"))
	}
	auth := e.op.LastAuthorizeRequest()
	sum := sha256.Sum256([]byte(begun.PKCEVerifier))
	for k, want := range map[string]string{
		"code_challenge_method": "S256",
		"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
		"nonce":                 begun.Nonce,
		"state":                 "state-123",
		"login_hint":            alice.Email,
		"redirect_uri":          callback,
		"scope":                 "openid email profile",
	} {
		if got := auth.Get(k); got != want {
			t.Errorf("authorize %s = %q, want %q", k, got, want)
		}
	}
	if n, _ := base64.RawURLEncoding.DecodeString(begun.Nonce); len(n) != 32 {
		t.Errorf("nonce has %d bytes, want 32", len(n))
	}
	id, err := e.c.Finish(context.Background(), req, begun)
	if err != nil {
		t.Fatal(err)
	}
	if id.Issuer != e.op.Issuer() || id.Subject != alice.Subject || id.Email != alice.Email ||
		!id.EmailVerified || id.Name != alice.Name || id.GivenName != "Alice" || id.FamilyName != "Liddell" {
		t.Errorf("identity = %+v", id)
	}
	if !slices.Equal(id.Groups, alice.Groups) || id.GroupsOverage {
		t.Errorf("groups = %q overage=%v", id.Groups, id.GroupsOverage)
	}
	if id.Attributes["department"] != "R&D" || id.Attributes["iss"] != "" {
		t.Errorf("attributes = %v", id.Attributes)
	}
}

func TestBeginIsFreshEachTime(t *testing.T) {
	e := newEnv(t, oidc.Config{})
	a, _ := e.c.Begin(context.Background(), "s1", "")
	b, _ := e.c.Begin(context.Background(), "s2", "")
	if a.Nonce == b.Nonce || a.PKCEVerifier == b.PKCEVerifier {
		t.Error("nonce or verifier reused across sign-ins")
	}
	if u, _ := url.Parse(a.RedirectURL); u.Query().Has("login_hint") {
		t.Error("login_hint sent though none given")
	}
	if _, err := e.c.Begin(context.Background(), "", ""); err == nil {
		t.Error("Begin accepted an empty state")
	}
}

func TestEntraStyleClaims(t *testing.T) {
	// Entra ID: no email_verified, group overage, groups in a custom claim.
	e := newEnv(t, oidc.Config{})
	e.op.SetClaimsOverride(map[string]any{
		"email_verified": nil, "groups": nil,
		"_claim_names":   map[string]any{"groups": "src1"},
		"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.example/getMemberObjects"}},
	})
	id, err := e.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	if id.EmailVerified || !id.GroupsOverage || len(id.Groups) != 0 {
		t.Errorf("identity = %+v", id)
	}
}

func TestGroupsClaim(t *testing.T) {
	e := newEnv(t, oidc.Config{GroupsClaim: "roles"})
	e.op.SetClaimsOverride(map[string]any{"roles": "admins"})
	id, err := e.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Groups, []string{"admins"}) {
		t.Errorf("groups from a single string = %q", id.Groups)
	}
	if _, ok := id.Attributes["roles"]; ok {
		t.Error("groups claim copied into attributes")
	}
}

func TestHostedDomain(t *testing.T) {
	e := newEnv(t, oidc.Config{HostedDomain: "example.com"})
	e.op.SetClaimsOverride(map[string]any{"hd": "example.com"})
	begun, req := e.begin(t)
	if u, _ := url.Parse(begun.RedirectURL); u.Query().Get("hd") != "example.com" {
		t.Error("hd hint not sent")
	}
	id, err := e.c.Finish(context.Background(), req, begun)
	if err != nil {
		t.Fatal(err)
	}
	if id.HostedDomain != "example.com" {
		t.Errorf("HostedDomain = %q", id.HostedDomain)
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, oidc.Config{})
	if _, err := e.signIn(t); err != nil {
		t.Fatal(err)
	}
	if err := e.op.RotateKey(); err != nil {
		t.Fatal(err)
	}
	e.op.DropOldKeys()
	if _, err := e.signIn(t); err != nil {
		t.Fatalf("after key rotation: %v", err)
	}
}

func TestDiscoveryErrors(t *testing.T) {
	op := oidctest.Start(t)
	for _, issuer := range []string{op.Issuer() + "/", op.Issuer() + "/nothing-here", "http://127.0.0.1:1"} {
		conn := &store.Connection{Issuer: issuer, ClientID: clientID, ClientSecret: secret}
		_, err := oidc.New(context.Background(), conn, oidc.Config{RedirectURL: callback, HTTPClient: op.HTTPClient()})
		if err == nil || !strings.HasPrefix(err.Error(), "OIDC discovery for "+issuer+": ") {
			t.Errorf("%s: err = %v", issuer, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the client secret: %v", err)
		}
	}
	conn := &store.Connection{Issuer: op.Issuer(), ClientID: clientID}
	if _, err := oidc.New(context.Background(), conn, oidc.Config{RedirectURL: "/callback"}); err == nil {
		t.Error("relative redirect URL accepted")
	}
}

func TestSecretNotPrinted(t *testing.T) {
	e := newEnv(t, oidc.Config{})
	if s := fmt.Sprintf("%v %+v %#v %s", e.c, e.c, e.c, e.c); strings.Contains(s, secret) {
		t.Errorf("connector prints its secret: %s", s)
	}
}
