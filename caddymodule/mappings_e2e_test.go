package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/samltest"
)

func TestGroupMappingsSAML(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	idp := samltest.Start(t, samltest.Options{})
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tdns_resolver "+dns.Addr+"\n\t\tallow_private_idps\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	api := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "owner", true).APIKey}
	signInUnder(t, g, "lead@acme.com", "research", "owner", "acme", false)
	verifiedDomain(t, api, dns, "acme.com")
	_, conn := api.do("POST", "/connections", "application/json",
		`{"type":"saml","name":"IdP","default_org":"acme","metadata_url":"`+idp.MetadataURL()+`","group_attribute":"eduPersonAffiliation"}`)
	_, spMD := newBrowser(t).get(conn["setup"].(map[string]any)["entity_id"].(string))
	idp.RegisterSP(t, []byte(spMD))
	idp.AddUser(t, "alice", "pw", "alice@acme.com", []string{"ssogate-acme-admin", "ssogate-research-member", "Everyone"})
	idp.AddUser(t, "olga", "pw", "owner@acme.com", []string{"ssogate-acme-owner"})

	code, m := api.do("GET", "/orgs/research/group-mappings", "", "")
	if code != 200 || m["enabled"] != false || jsonOf(m["group_names"]) != `["ssogate-research-member","ssogate-research-admin","ssogate-research-owner"]` {
		t.Fatalf("mappings: %d %v", code, m)
	}
	// Lockout prevention: research's only owner is in no mapped group.
	code, p := api.do("GET", "/orgs/research/group-mappings/preview", "", "")
	if code != 200 || p["lockout"] != true || !strings.Contains(jsonOf(p["changes"]), `"action":"remove"`) {
		t.Fatalf("preview: %d %v", code, p)
	}
	if code, body := api.do("PUT", "/orgs/research/group-mappings", "application/json", `{"enabled":true}`); code != 409 || errCode(body) != "lockout" {
		t.Fatalf("toggle with lockout: %d %v", code, body)
	}
	if _, m := api.do("GET", "/orgs/research/group-mappings", "", ""); m["enabled"] != false {
		t.Fatal("a refused toggle changed the setting")
	}
	if code, body := api.do("PUT", "/orgs/research/group-mappings", "application/json", `{"enabled":true,"force":true}`); code != 200 || !strings.Contains(jsonOf(body), `"email":"lead@acme.com"`) {
		t.Fatalf("forced toggle: %d %v", code, body)
	}

	login := func(idpUser, email string) *browser {
		b := newBrowser(t)
		resp, _ := b.startLogin(g, email, "/", url.Values{"method": {"sso"}})
		acs, form := idp.Login(t, &http.Client{}, location(t, resp, 303), idpUser, "pw")
		if resp, _ := b.post(acs, form); resp.StatusCode != 303 {
			t.Fatalf("%s SSO: %d", email, resp.StatusCode)
		}
		return b
	}
	// The owner signs in once: her SSO groups are now known.
	login("olga", "owner@acme.com")
	// acme: the owner's group keeps her an owner, so no lockout.
	if code, body := api.do("PUT", "/orgs/acme/group-mappings", "application/json", `{"enabled":true}`); code != 200 {
		t.Fatalf("toggle acme: %d %v", code, body)
	}
	// One sign-in grants each org its mapped role.
	alice := login("alice", "alice@acme.com")
	resp, body := alice.get(g.URL + "/")
	if resp.StatusCode != 200 || !strings.Contains(body, `"X-Ssogate-Orgs":["acme:admin,research:member"]`) {
		t.Fatalf("alice's orgs: %d %s", resp.StatusCode, body)
	}
	out := g.SettledOutput()
	for _, want := range []string{`"action":"mapping.grant"`, `"group":"ssogate-research-member"`, `"action":"mapping.toggle"`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
}
