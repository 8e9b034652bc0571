package caddymodule_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/samltest"
)

func TestSAMLSignInEndToEnd(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	idp := samltest.Start(t, samltest.Options{})
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tdns_resolver "+dns.Addr+"\n\t\tallow_private_idps\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	api := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "owner", true).APIKey}
	verifiedDomain(t, api, dns, "acme.com")

	code, conn := api.do("POST", "/connections", "application/json",
		`{"type":"saml","name":"Acme SAML","metadata_url":"`+idp.MetadataURL()+`","group_attribute":"eduPersonAffiliation"}`)
	if code != 201 {
		t.Fatalf("create connection: %d %v", code, conn)
	}
	setup := conn["setup"].(map[string]any)
	entityID := setup["entity_id"].(string)
	resp, spMD := newBrowser(t).get(entityID)
	if resp.StatusCode != 200 || !strings.Contains(spMD, setup["acs_url"].(string)) {
		t.Fatalf("SP metadata: %d %s", resp.StatusCode, spMD)
	}
	idp.RegisterSP(t, []byte(spMD))
	idp.AddUser(t, "alice", "pw-alice", "alice@acme.com", []string{"ssogate-acme-admin", "staff"})
	idp.AddUser(t, "mallory", "pw-mallory", "mallory@evil.com", nil)
	idpBrowser := func() *http.Client { return &http.Client{} }

	// SP-initiated sign-in: email → IdP → ACS → session → upstream.
	alice := newBrowser(t)
	resp, _ = alice.startLogin(g, "alice@acme.com", "/inbox", url.Values{"method": {"sso"}})
	redirect := location(t, resp, 303)
	acsURL, form := idp.Login(t, idpBrowser(), redirect, "alice", "pw-alice")
	if acsURL != setup["acs_url"] {
		t.Fatalf("IdP posted to %q, want %q", acsURL, setup["acs_url"])
	}
	resp, _ = alice.post(acsURL, form)
	if loc := location(t, resp, 303); loc != "/inbox" {
		t.Fatalf("after ACS: %q", loc)
	}
	resp, body := alice.get(g.URL + "/inbox")
	if resp.StatusCode != 200 || upstreamEmail(t, body) != "alice@acme.com" || !strings.Contains(body, "ssogate-acme-admin") || strings.Contains(body, `"staff"`) {
		t.Fatalf("upstream after SAML: %d %s", resp.StatusCode, body)
	}

	t.Run("the same response posted again is refused", func(t *testing.T) {
		resp, page := alice.post(acsURL, form)
		if resp.StatusCode != 400 {
			t.Fatalf("replayed response: %d", resp.StatusCode)
		}
		contains(t, page, "/.ssogate/login?sso=true")
	})
	t.Run("an old response for a new request is refused", func(t *testing.T) {
		resp, _ := alice.startLogin(g, "alice@acme.com", "/", url.Values{"method": {"sso"}})
		u, _ := url.Parse(location(t, resp, 303))
		stale := url.Values{"SAMLResponse": form["SAMLResponse"], "RelayState": {u.Query().Get("RelayState")}}
		if resp, _ := alice.post(acsURL, stale); resp.StatusCode != 403 {
			t.Fatalf("stale response: %d", resp.StatusCode)
		}
	})
	t.Run("IdP-initiated sign-in is refused with guidance", func(t *testing.T) {
		b := newBrowser(t)
		acs, f := idp.IdPInitiated(t, idpBrowser(), "alice", "pw-alice", entityID)
		resp, page := b.post(acs, f)
		if resp.StatusCode != 400 {
			t.Fatalf("unsolicited: %d", resp.StatusCode)
		}
		contains(t, page, "does not accept sign-ins started from your identity provider", "/.ssogate/login?sso=true")
		if r, _ := b.get(g.URL + "/inbox"); r.StatusCode != 302 {
			t.Fatal("an unsolicited response created a session")
		}
		if !g.Logged(`"reason":"unsolicited"`) {
			t.Fatal("unsolicited response not audited")
		}
	})
	t.Run("a tampered response is refused", func(t *testing.T) {
		b := newBrowser(t)
		resp, _ := b.startLogin(g, "alice@acme.com", "/", url.Values{"method": {"sso"}})
		acs, f := idp.Login(t, idpBrowser(), location(t, resp, 303), "alice", "pw-alice")
		raw, _ := base64.StdEncoding.DecodeString(f.Get("SAMLResponse"))
		// The assertion is encrypted to our key; change a signed part of
		// the Response instead: its IssueInstant.
		i := strings.Index(string(raw), `IssueInstant="`) + len(`IssueInstant="`)
		if i < len(`IssueInstant="`) {
			t.Fatalf("no IssueInstant in %s", raw)
		}
		if raw[i] == '2' {
			raw[i] = '1'
		} else {
			raw[i] = '2'
		}
		f.Set("SAMLResponse", base64.StdEncoding.EncodeToString(raw))
		if resp, _ := b.post(acs, f); resp.StatusCode != 403 {
			t.Fatalf("tampered response: %d", resp.StatusCode)
		}
	})
	t.Run("an IdP asserting an email outside the verified domains is refused", func(t *testing.T) {
		b := newBrowser(t)
		resp, _ := b.startLogin(g, "anyone@acme.com", "/", url.Values{"method": {"sso"}})
		acs, f := idp.Login(t, idpBrowser(), location(t, resp, 303), "mallory", "pw-mallory")
		resp, page := b.post(acs, f)
		if resp.StatusCode != 403 {
			t.Fatalf("outside email: %d", resp.StatusCode)
		}
		contains(t, page, "has not verified")
		if !g.Logged("profile_not_allowed_outside_organization") {
			t.Fatal("cross-tenant refusal not audited")
		}
	})
	// The connection is tested now, so SSO can be enforced.
	if code, res := api.do("PUT", "/sso", "application/json", `{"enforced":true}`); code != 200 {
		t.Fatalf("enforce: %d %v", code, res)
	}
	if r, _ := alice.get(g.URL + "/inbox"); r.StatusCode != 302 {
		t.Fatalf("session survived enforcement: %d", r.StatusCode)
	}
}

func TestEnforceSSORequiresTestedConnection(t *testing.T) {
	t.Parallel()
	idp := samltest.Start(t, samltest.Options{})
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	api := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "owner", true).APIKey}
	if code, body := api.do("PUT", "/sso", "application/json", `{"enforced":true}`); code != 409 || errCode(body) != "sso_untested" {
		t.Fatalf("enforce without connection: %d %v", code, body)
	}
	if code, _ := api.do("POST", "/connections", "application/json", `{"type":"saml","name":"x","metadata_xml":`+jsonString(string(idp.MetadataXML()))+`}`); code != 201 {
		t.Fatalf("create: %d", code)
	}
	if code, body := api.do("PUT", "/sso", "application/json", `{"enforced":true}`); code != 409 || errCode(body) != "sso_untested" {
		t.Fatalf("enforce with an untested connection: %d %v", code, body)
	}
	for _, bad := range []string{
		`{"type":"saml","name":"x"}`,
		`{"type":"saml","name":"x","metadata_xml":"<nope/>"}`,
		`{"type":"saml","name":"x","metadata_url":"http://example.com/md"}`,
		`{"type":"oidc","name":"x","issuer":"https://127.0.0.1:1/","client_id":"a","client_secret":"b"}`,
		`{"type":"ldap","name":"x"}`,
		// Private and loopback IdPs are refused unless allow_private_idps is set.
		`{"type":"saml","name":"x","metadata_url":"` + idp.MetadataURL() + `"}`,
		`{"type":"saml","name":"x","metadata_url":"https://127.0.0.1:2019/config/"}`,
		`{"type":"oidc","name":"x","issuer":"https://169.254.169.254/latest","client_id":"a","client_secret":"b"}`,
		`{"type":"saml","name":"","metadata_xml":"x"}`,
	} {
		if code, body := api.do("POST", "/connections", "application/json", bad); code != 400 {
			t.Errorf("%s: %d %v", bad, code, body)
		}
	}
	if _, body := api.do("GET", "/connections", "", ""); len(body["connections"].([]any)) != 1 {
		t.Fatalf("refused connections were stored: %v", body)
	}
}

func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
