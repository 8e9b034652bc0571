package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
)

type scimClient struct {
	t     *testing.T
	base  string
	token string
}

func (c scimClient) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+"/.ssogate/scim/v2"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	raw := gatewaytest.ReadBody(c.t, resp)
	var out map[string]any
	_ = json.Unmarshal([]byte(raw), &out)
	return resp.StatusCode, out
}

func TestSCIMEndToEnd(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tdns_resolver "+dns.Addr+"\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	api := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "primary_owner", true).APIKey}
	signInUnder(t, g, "lead@acme.com", "research", "owner", "acme", false)
	verifiedDomain(t, api, dns, "acme.com")

	code, tok := api.do("POST", "/orgs/acme/scim-tokens", "application/json", `{"name":"Okta"}`)
	if code != 201 || !strings.HasPrefix(tok["token"].(string), "ssogate_scim_") || tok["scim_base_url"] != g.URL+"/.ssogate/scim/v2" {
		t.Fatalf("create token: %d %v", code, tok)
	}
	if _, list := api.do("GET", "/orgs/acme/scim-tokens", "", ""); strings.Contains(jsonOf(list), tok["token"].(string)) {
		t.Fatal("the token is listed after creation")
	}
	sc := scimClient{t, g.URL, tok["token"].(string)}
	if code, _ := (scimClient{t, g.URL, "ssogate_scim_wrong"}).do("GET", "/Users", ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}

	// Provision a user; they sign in; deactivation ends the session at once.
	code, u := sc.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dana@acme.com","name":{"givenName":"Dana","familyName":"Lee"},"emails":[{"value":"dana@acme.com","primary":true}],"active":true}`)
	if code != 201 {
		t.Fatalf("create user: %d %v", code, u)
	}
	userID := u["id"].(string)
	// Unverified domains are refused until the parent org allows them.
	newbie := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"eve@partner.example","emails":[{"value":"eve@partner.example","primary":true}],"active":true}`
	if code, body := sc.do("POST", "/Users", newbie); code != 400 || body["scimType"] != "invalidValue" {
		t.Fatalf("unverified domain: %d %v", code, body)
	}
	if code, _ := api.do("PATCH", "/settings", "application/json", `{"allow_unverified_scim_domains":true}`); code != 200 {
		t.Fatalf("settings: %d", code)
	}
	if code, body := sc.do("POST", "/Users", newbie); code != 201 {
		t.Fatalf("allowed unverified domain: %d %v", code, body)
	}
	dana := signIn(t, g, "dana@acme.com", "", "", false)
	if resp := get(t, g.URL, "/", dana.Cookie, nil); resp.StatusCode != 200 {
		t.Fatalf("provisioned user: %d", resp.StatusCode)
	}
	if code, _ := sc.do("PATCH", "/Users/"+userID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{"active":"False"}}]}`); code != 200 {
		t.Fatalf("deactivate: %d", code)
	}
	if resp := get(t, g.URL, "/", dana.Cookie, nil); resp.StatusCode != 302 {
		t.Fatalf("deactivated user still passes: %d", resp.StatusCode)
	}
	if code, _ := sc.do("PATCH", "/Users/"+userID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`); code != 200 {
		t.Fatalf("reactivate: %d", code)
	}

	// Push groups with mappings on: SCIM gives the same result as SAML groups.
	if code, body := api.do("PUT", "/orgs/research/group-mappings", "application/json", `{"enabled":true,"force":true}`); code != 200 {
		t.Fatalf("mappings on research: %d %v", code, body)
	}
	if code, body := api.do("PUT", "/orgs/acme/group-mappings", "application/json", `{"enabled":true,"force":true}`); code != 200 {
		t.Fatalf("mappings on acme: %d %v", code, body)
	}
	code, grp := sc.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"ssogate-research-member","members":[{"value":"`+userID+`"}]}`)
	if code != 201 {
		t.Fatalf("push group: %d %v", code, grp)
	}
	if code, g2 := sc.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"ssogate-acme-admin","members":[{"value":"`+userID+`"}]}`); code != 201 {
		t.Fatalf("push group: %d %v", code, g2)
	}
	dana = signIn(t, g, "dana@acme.com", "", "", false)
	resp := get(t, g.URL, "/", dana.Cookie, nil)
	body := gatewaytest.ReadBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `"X-Ssogate-Orgs":["acme:admin,research:member"]`) {
		t.Fatalf("after group push: %d %s", resp.StatusCode, body)
	}
	// Removing her from the research group ends her access to research.
	if code, _ := sc.do("PATCH", "/Groups/"+grp["id"].(string), `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+userID+`\"]"}]}`); code != 200 && code != 204 {
		t.Fatalf("remove from group: %d", code)
	}
	resp = get(t, g.URL, "/", dana.Cookie, nil)
	body = gatewaytest.ReadBody(t, resp)
	if !strings.Contains(body, `"X-Ssogate-Orgs":["acme:admin"]`) {
		t.Fatalf("after leaving the research group: %s", body)
	}
	// Another org's token sees nothing of acme.
	_, other := api.do("POST", "/orgs/research/scim-tokens", "application/json", `{"name":"other"}`)
	osc := scimClient{t, g.URL, other["token"].(string)}
	if code, _ := osc.do("GET", "/Users/"+userID, ""); code != 404 {
		t.Fatalf("cross-org read: %d", code)
	}
	if code, _ := osc.do("DELETE", "/Users/"+userID, ""); code != 404 {
		t.Fatalf("cross-org delete: %d", code)
	}
	// DELETE removes the membership and ends sessions.
	if code, _ := sc.do("DELETE", "/Users/"+userID, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if resp := get(t, g.URL, "/", dana.Cookie, nil); resp.StatusCode != 302 {
		t.Fatalf("deleted user still passes: %d", resp.StatusCode)
	}
	_, metrics := newBrowser(t).get("http://" + g.Admin + "/metrics")
	for _, want := range []string{`ssogate_scim_requests_total{method="POST",resource="Users",status="201"}`,
		`ssogate_scim_requests_total{method="GET",resource="Users",status="401"} 1`, "ssogate_sessions_revoked_total", `ssogate_store_operation_seconds_count{op="update"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "ssogate_"))
		}
	}
	if !g.Logged(`"actor":"scim:Okta"`) {
		t.Fatal("SCIM changes are not audited with the token's name")
	}
}
