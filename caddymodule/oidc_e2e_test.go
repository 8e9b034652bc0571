package caddymodule_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/oidctest"
)

func TestOIDCSignInEndToEnd(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	op := oidctest.Start(t)
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tdns_resolver "+dns.Addr+"\n\t\tallow_private_idps\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	owner := signIn(t, g, "owner@acme.com", "acme", "owner", true)
	api := apiClient{t, g.URL, owner.APIKey}
	verifiedDomain(t, api, dns, "acme.com")

	code, conn := api.do("POST", "/connections", "application/json",
		`{"type":"oidc","name":"Acme IdP","issuer":"`+op.Issuer()+`","client_id":"ssogate","client_secret":"s3cret-value"}`)
	if code != 201 {
		t.Fatalf("create connection: %d %v", code, conn)
	}
	raw, _ := json.Marshal(conn)
	if strings.Contains(string(raw), "s3cret-value") {
		t.Fatal("the client secret was returned")
	}
	setup := conn["setup"].(map[string]any)
	redirectURI := setup["redirect_uri"].(string)
	if !strings.HasPrefix(redirectURI, g.URL+"/.ssogate/oidc/") || setup["login_url"] != g.URL+"/.ssogate/login?sso=true" {
		t.Fatalf("setup = %v", setup)
	}
	op.AddClient("ssogate", "s3cret-value", redirectURI)
	op.AddUser(oidctest.User{Subject: "u-alice", Email: "alice@acme.com", EmailVerified: true, Name: "Alice", Groups: []string{"ssogate-acme-admin", "staff"}})
	op.AddUser(oidctest.User{Subject: "u-mallory", Email: "mallory@other.com", EmailVerified: true})

	// SSO is offered, not enforced: the first submit offers it.
	alice := newBrowser(t)
	resp, page := alice.startLogin(g, "Alice@Acme.com", "/reports?q=1", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("offer page: %d", resp.StatusCode)
	}
	contains(t, page, "Continue with single sign-on")
	resp, _ = alice.startLogin(g, "alice@acme.com", "/reports?q=1", url.Values{"method": {"sso"}})
	authURL := location(t, resp, 303)
	if !strings.HasPrefix(authURL, op.Issuer()) {
		t.Fatalf("sent to %q, not the IdP", authURL)
	}
	cb, err := op.Login(authURL)
	if err != nil {
		t.Fatal(err)
	}
	ar := op.LastAuthorizeRequest()
	if ar.Get("code_challenge_method") != "S256" || ar.Get("nonce") == "" || ar.Get("state") == "" || ar.Get("login_hint") != "alice@acme.com" {
		t.Fatalf("authorize request %v", ar)
	}
	resp, _ = alice.get(cb.String())
	if loc := location(t, resp, 303); loc != "/reports?q=1" {
		t.Fatalf("returned to %q", loc)
	}
	resp, body := alice.get(g.URL + "/reports?q=1")
	if resp.StatusCode != 200 || upstreamEmail(t, body) != "alice@acme.com" || !strings.Contains(body, "acme:member") {
		t.Fatalf("upstream after SSO: %d %s", resp.StatusCode, body)
	}
	// The callback cannot be used twice.
	resp, page = alice.get(cb.String())
	if resp.StatusCode != 400 {
		t.Fatalf("reused callback: %d", resp.StatusCode)
	}
	contains(t, page, "/.ssogate/login?sso=true")

	t.Run("callback from another browser is refused", func(t *testing.T) {
		other := newBrowser(t)
		resp, _ := alice.startLogin(g, "alice@acme.com", "/", url.Values{"method": {"sso"}})
		cb, err := op.Login(location(t, resp, 303))
		if err != nil {
			t.Fatal(err)
		}
		resp, _ = other.get(cb.String())
		if resp.StatusCode != 403 {
			t.Fatalf("callback in another browser: %d", resp.StatusCode)
		}
		// The refused attempt did not burn the sign-in of the browser that started it.
		if resp, _ := alice.get(cb.String()); resp.StatusCode != 303 {
			t.Fatalf("the starting browser after a foreign attempt: %d", resp.StatusCode)
		}
	})
	t.Run("IdP asserting an email outside the verified domains is refused", func(t *testing.T) {
		b := newBrowser(t)
		resp, _ := b.startLogin(g, "someone@acme.com", "/", url.Values{"method": {"sso"}})
		op.SetNextUser("u-mallory")
		au := location(t, resp, 303)
		u, _ := url.Parse(au)
		qq := u.Query()
		qq.Del("login_hint")
		u.RawQuery = qq.Encode()
		cb, err := op.Login(u.String())
		if err != nil {
			t.Fatal(err)
		}
		resp, page := b.get(cb.String())
		if resp.StatusCode != 403 {
			t.Fatalf("outside email: %d", resp.StatusCode)
		}
		contains(t, page, "has not verified")
		if !g.Logged("profile_not_allowed_outside_organization") {
			t.Fatal("refusal not audited")
		}
	})

	// Both the sign-in and the refusals are counted in Caddy's metrics.
	resp, metrics := newBrowser(t).get("http://" + g.Admin + "/metrics")
	if resp.StatusCode != 200 || !strings.Contains(metrics, `ssogate_sign_ins_total{method="oidc",outcome="success"}`) ||
		!strings.Contains(metrics, `ssogate_sign_ins_total{method="oidc",outcome="profile_not_allowed_outside_organization"} 1`) {
		t.Fatalf("metrics: %d\n%s", resp.StatusCode, grepLines(metrics, "ssogate_"))
	}

	// Enforcing SSO ends the existing sessions; then the email goes straight to the IdP.
	code, res := api.do("PUT", "/sso", "application/json", `{"enforced":true}`)
	if code != 200 || res["sessions_ended"].(float64) < 1 {
		t.Fatalf("enforce: %d %v", code, res)
	}
	resp, _ = alice.get(g.URL + "/reports?q=1")
	location(t, resp, 302)
	resp, _ = alice.startLogin(g, "alice@acme.com", "/", nil)
	if !strings.HasPrefix(location(t, resp, 303), op.Issuer()) {
		t.Fatal("with SSO enforced the email did not go straight to the IdP")
	}
	if !g.Logged(`"action":"sso.enforce"`) {
		t.Fatal("enforcement not audited")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
