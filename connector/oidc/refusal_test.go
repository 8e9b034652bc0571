package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/connector"
	"github.com/ssogate/ssogate/connector/oidc"
	"github.com/ssogate/ssogate/internal/oidctest"
)

// withQuery returns req with its callback query changed by edit.
func withQuery(req *http.Request, edit func(q map[string][]string)) *http.Request {
	u := *req.URL
	q := u.Query()
	edit(q)
	u.RawQuery = q.Encode()
	return httptest.NewRequest(http.MethodGet, u.String(), nil)
}

func overriding(claims map[string]any) func(t *testing.T, e *env) error {
	return func(t *testing.T, e *env) error {
		e.op.SetClaimsOverride(claims)
		_, err := e.signIn(t)
		return err
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, reason string
		cfg          oidc.Config
		run          func(t *testing.T, e *env) error
	}{
		{name: "code reuse", reason: "code_exchange", run: func(t *testing.T, e *env) error {
			begun, req := e.begin(t)
			if _, err := e.c.Finish(ctx, req, begun); err != nil {
				t.Fatalf("first use: %v", err)
			}
			_, err := e.c.Finish(ctx, req, begun)
			return err
		}},
		{name: "wrong PKCE verifier", reason: "code_exchange", run: func(t *testing.T, e *env) error {
			begun, req := e.begin(t)
			other, _ := e.c.Begin(ctx, "other", "")
			begun.PKCEVerifier = other.PKCEVerifier
			_, err := e.c.Finish(ctx, req, begun)
			return err
		}},
		{name: "nonce mismatch", reason: "nonce", run: func(t *testing.T, e *env) error {
			begun, req := e.begin(t)
			other, _ := e.c.Begin(ctx, "other", "")
			begun.Nonce = other.Nonce
			_, err := e.c.Finish(ctx, req, begun)
			return err
		}},
		{name: "nonce replaced by the IdP", reason: "nonce", run: overriding(map[string]any{"nonce": "attacker-nonce"})},
		{name: "no nonce in token", reason: "nonce", run: overriding(map[string]any{"nonce": nil})},
		{name: "alg none", reason: "signature", run: func(t *testing.T, e *env) error {
			e.op.SetSigning(oidctest.SignNone)
			_, err := e.signIn(t)
			return err
		}},
		{name: "HS256 keyed with the public key", reason: "signature", run: func(t *testing.T, e *env) error {
			e.op.SetSigning(oidctest.SignHS256WithPublicKey)
			_, err := e.signIn(t)
			return err
		}},
		{name: "signed with an unpublished key", reason: "signature", run: func(t *testing.T, e *env) error {
			e.op.SetSigning(oidctest.SignUnpublishedKey)
			_, err := e.signIn(t)
			return err
		}},
		{name: "wrong iss", reason: "issuer", run: overriding(map[string]any{"iss": "https://evil.example.com"})},
		{name: "wrong aud", reason: "audience", run: overriding(map[string]any{"aud": "another-client"})},
		{name: "wrong azp", reason: "azp", run: overriding(map[string]any{
			"aud": []string{clientID, "another-client"}, "azp": "another-client"})},
		{name: "several aud without azp", reason: "azp", run: overriding(map[string]any{
			"aud": []string{clientID, "another-client"}})},
		{name: "expired", reason: "expired", run: overriding(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})},
		{name: "expired by our clock", reason: "expired",
			cfg: oidc.Config{Clock: func() time.Time { return time.Now().Add(time.Hour) }},
			run: func(t *testing.T, e *env) error { _, err := e.signIn(t); return err }},
		{name: "email_verified false", reason: "unverified_email", run: overriding(map[string]any{"email_verified": false})},
		{name: `email_verified "false"`, reason: "unverified_email", run: overriding(map[string]any{"email_verified": "false"})},
		{name: "no email", reason: "no_email", run: overriding(map[string]any{"email": nil})},
		{name: "hd mismatch", reason: "hosted_domain", cfg: oidc.Config{HostedDomain: "example.com"},
			run: overriding(map[string]any{"hd": "evil.example"})},
		{name: "hd missing", reason: "hosted_domain", cfg: oidc.Config{HostedDomain: "example.com"},
			run: overriding(nil)},
		{name: "access_denied", reason: "idp_error", run: func(t *testing.T, e *env) error {
			begun, err := e.c.Begin(ctx, "state-123", "") // no hint, no next user
			if err != nil {
				t.Fatal(err)
			}
			req := e.login(t, begun)
			if req.URL.Query().Get("error") != "access_denied" {
				t.Fatalf("OP answered %s", req.URL)
			}
			_, err = e.c.Finish(ctx, req, begun)
			if err != nil && !strings.Contains(err.Error(), "no user signed in") {
				t.Errorf("error_description missing from the cause: %v", err)
			}
			return err
		}},
		{name: "no state", reason: "state", run: func(t *testing.T, e *env) error {
			begun, req := e.begin(t)
			_, err := e.c.Finish(ctx, withQuery(req, func(q map[string][]string) { delete(q, "state") }), begun)
			return err
		}},
		{name: "nothing kept for the state", reason: "state", run: func(t *testing.T, e *env) error {
			_, req := e.begin(t)
			_, err := e.c.Finish(ctx, req, &connector.Begun{})
			return err
		}},
		{name: "no code", reason: "malformed", run: func(t *testing.T, e *env) error {
			begun, req := e.begin(t)
			_, err := e.c.Finish(ctx, withQuery(req, func(q map[string][]string) { delete(q, "code") }), begun)
			return err
		}},
		{name: "mix-up: code from another OP", reason: "issuer", run: func(t *testing.T, e *env) error {
			begun, req := mixUp(t, e)
			_, err := e.c.Finish(ctx, req, begun)
			return err
		}},
		{name: "mix-up without RFC 9207 iss", reason: "code_exchange", run: func(t *testing.T, e *env) error {
			begun, req := mixUp(t, e)
			req = withQuery(req, func(q map[string][]string) { delete(q, "iss") })
			_, err := e.c.Finish(ctx, req, begun)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.cfg)
			err := tc.run(t, e)
			t.Log(err)
			var refusal *connector.Error
			if !errors.As(err, &refusal) {
				t.Fatalf("err = %v, want a refusal %q", err, tc.reason)
			}
			if refusal.Reason != tc.reason {
				t.Errorf("reason = %q, want %q (%v)", refusal.Reason, tc.reason, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("refusal shows the client secret: %v", err)
			}
		})
	}
}

// mixUp signs alice in at a second OP B (same client ID and redirect URI)
// and returns a begun from e's connector (OP A) with B's callback request.
func mixUp(t *testing.T, e *env) (*connector.Begun, *http.Request) {
	t.Helper()
	b := &env{op: oidctest.Start(t)}
	b.op.AddClient(clientID, secret, callback)
	b.op.AddUser(alice)
	b.c = newConnector(t, b.op, oidc.Config{})
	beginA, err := e.c.Begin(context.Background(), "state-123", alice.Email)
	if err != nil {
		t.Fatal(err)
	}
	_, reqB := b.begin(t)
	return beginA, reqB
}
