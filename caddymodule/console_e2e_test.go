package caddymodule_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/samltest"
)

// consoleClient is a browser without JavaScript: a session cookie, and the
// CSRF token of the last page it read.
type consoleClient struct {
	t      *testing.T
	g      *gatewaytest.Gateway
	cookie string
	csrf   string
	origin string // the Origin header sent with forms ("" = the site's)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *consoleClient) do(req *http.Request) (int, string, http.Header) {
	c.t.Helper()
	if c.cookie != "" {
		req.Header.Set("Cookie", "ssogate_session="+c.cookie)
	}
	resp, err := gatewaytest.NoRedirectClient().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	body := gatewaytest.ReadBody(c.t, resp)
	if m := csrfField.FindStringSubmatch(body); m != nil {
		c.csrf = m[1]
	}
	return resp.StatusCode, body, resp.Header
}

func (c *consoleClient) get(path string) (int, string, http.Header) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.g.URL+"/.ssogate/settings/identity"+path, nil)
	return c.do(req)
}

// post submits a console form with the page's CSRF token (unless the form
// sets its own).
func (c *consoleClient) post(action string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	req, _ := http.NewRequest("POST", c.g.URL+"/.ssogate/settings/identity/actions/"+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", cmpOr(c.origin, c.g.URL))
	return c.do(req)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestConsoleAccess(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	owner := signIn(t, g, "owner@acme.test", "acme", "owner", false)
	admin := signInUnder(t, g, "admin@acme.test", "acme-admins", "admin", "acme", false)
	member := signInUnder(t, g, "member@acme.test", "acme-members", "member", "acme", false)

	// Signed out: sent to sign in, coming back here.
	anon := &consoleClient{t: t, g: g}
	code, _, hdr := anon.get("")
	if code != http.StatusFound || !strings.Contains(hdr.Get("Location"), "/.ssogate/login?return_to=%2F.ssogate%2Fsettings%2Fidentity") {
		t.Fatalf("signed out: %d %s", code, hdr.Get("Location"))
	}
	// A plain member: 403.
	m := &consoleClient{t: t, g: g, cookie: member.Cookie}
	if code, body, _ := m.get(""); code != http.StatusForbidden || !strings.Contains(body, "Only owners and admins") {
		t.Fatalf("member: %d %.200s", code, body)
	}
	// An admin: Members only, of the orgs they administer.
	a := &consoleClient{t: t, g: g, cookie: admin.Cookie}
	if code, _, hdr := a.get(""); code != http.StatusSeeOther || !strings.HasSuffix(hdr.Get("Location"), "/settings/identity/members") {
		t.Fatalf("admin on owners' page: %d %s", code, hdr.Get("Location"))
	}
	code, body, _ := a.get("/members")
	if code != 200 || !strings.Contains(body, "Members of acme-admins") || strings.Contains(body, ">Domains &amp; SSO<") ||
		strings.Contains(body, `value="acme"`) {
		t.Fatalf("admin members page: %d %.3000s", code, body)
	}
	// The owner: every section, with the security headers.
	o := &consoleClient{t: t, g: g, cookie: owner.Cookie}
	// Owners of the parent org manage the members of all its orgs, even
	// those they are not a member of.
	if code, body, _ := o.get("/members?org=acme-admins"); code != 200 || !strings.Contains(body, `data-member="admin@acme.test"`) {
		t.Fatalf("owner on another org's members: %d %.300s", code, body)
	}
	// A form sent after the session ended: sign in, then back here.
	gone := &consoleClient{t: t, g: g, cookie: "expired-or-forged"}
	if code, _, hdr := gone.post("domain-add", url.Values{"csrf": {"x"}, "domain": {"acme.test"}}); code != http.StatusSeeOther ||
		hdr.Get("Location") != "/.ssogate/login?return_to=%2F.ssogate%2Fsettings%2Fidentity" {
		t.Fatalf("form without a session: %d %q", code, hdr.Get("Location"))
	}
	for _, s := range []struct{ path, want string }{
		{"", "Add Domain"}, {"", "Add SSO"}, {"/members", "Add Member"}, {"/scim", "SCIM base URL"},
		{"/group-mappings", "Groups to create"}, {"/domain-memberships", "View Domain Memberships"},
		{"/organizations", "Merge proposals"}, {"/audit", "Audit log"}, {"/sessions", "Look up"},
	} {
		code, body, hdr := o.get(s.path)
		if code != 200 || !strings.Contains(body, s.want) {
			t.Errorf("owner %q: %d, no %q in %.300s", s.path, code, s.want, body)
		}
		csp := hdr.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			!strings.Contains(csp, "script-src "+g.URL+"/.ssogate/settings/identity/console.js;") ||
			hdr.Get("X-Frame-Options") != "DENY" || hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("owner %q: headers %v", s.path, hdr)
		}
		// Only the first page's Test sign-in form leads to an IdP.
		if strings.Contains(csp, "form-action 'self'") != (s.path != "") {
			t.Errorf("owner %q: form-action in %q", s.path, csp)
		}
		if !strings.Contains(body, `<meta name="ssogate-csrf" content="`+o.csrf+`">`) {
			t.Errorf("owner %q: no CSRF meta tag for scripts", s.path)
		}
	}
}

func TestConsoleForms(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	owner := signIn(t, g, "owner@acme.test", "acme", "owner", true)
	api := apiClient{t, g.URL, owner.APIKey}
	o := &consoleClient{t: t, g: g, cookie: owner.Cookie}
	o.get("")

	// CSRF: no token, a wrong token, a token of another session, a foreign
	// Origin: all refused, nothing changes.
	other := signIn(t, g, "owner@rival.test", "rival", "owner", false)
	oc := &consoleClient{t: t, g: g, cookie: other.Cookie}
	oc.get("")
	for name, tc := range map[string]struct {
		csrf, origin string
	}{
		"missing": {"", ""}, "wrong": {"x" + o.csrf[1:], ""}, "other session": {oc.csrf, ""}, "foreign origin": {o.csrf, "https://evil.example"},
	} {
		c := &consoleClient{t: t, g: g, cookie: owner.Cookie, origin: tc.origin}
		code, body, _ := c.post("domain-add", url.Values{"csrf": {tc.csrf}, "domain": {"acme.test"}})
		if code != http.StatusForbidden || !strings.Contains(body, "Nothing was changed") {
			t.Errorf("csrf %s: %d %.200s", name, code, body)
		}
	}
	if _, body := api.do("GET", "/domains", "", ""); len(body["domains"].([]any)) != 0 {
		t.Fatalf("a refused form changed something: %v", body)
	}

	// Bad input: the error is next to the field, the value is kept.
	code, body, _ := o.post("domain-add", url.Values{"domain": {"gmail.com"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="domain-err" role="alert"`) || !strings.Contains(body, `value="gmail.com"`) ||
		!strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("bad domain: %d %.4000s", code, body)
	}
	code, body, _ = o.post("domain-add", url.Values{"domain": {""}})
	if code != http.StatusBadRequest || !strings.Contains(body, "Enter your company") {
		t.Fatalf("empty domain: %d", code)
	}

	// Add Domain: POST/redirect/GET, then the TXT instructions and Pending.
	code, _, hdr := o.post("domain-add", url.Values{"domain": {"Acme.TEST"}})
	if code != http.StatusSeeOther || !strings.HasSuffix(hdr.Get("Location"), "/settings/identity?done=domain-add") {
		t.Fatalf("add domain: %d %s", code, hdr.Get("Location"))
	}
	_, body, _ = o.get("?done=domain-add")
	_, d := api.do("GET", "/domains/acme.test", "", "")
	if !strings.Contains(body, "Publish the TXT record") || !strings.Contains(body, ">Pending<") || !strings.Contains(body, d["txt_value"].(string)) {
		t.Fatalf("domain page: %.5000s", body)
	}
	if code, _, _ := o.post("domain-verify", url.Values{"domain": {"acme.test"}}); code != http.StatusSeeOther {
		t.Fatalf("refresh: %d", code)
	}

	// SSO cannot be required before a tested connection; the refusal shows.
	code, body, _ = o.post("sso", url.Values{"enforced": {"true"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "Tick the box") {
		t.Fatalf("sso without confirm: %d", code)
	}
	code, body, _ = o.post("sso", url.Values{"enforced": {"true"}, "confirm": {"yes"}})
	if code != http.StatusConflict || !strings.Contains(body, "test a connection first") {
		t.Fatalf("sso untested: %d %.300s", code, body)
	}

	// Members: add, change role, remove.
	if code, _, _ := o.post("member-add", url.Values{"org": {"acme"}, "email": {"bob@acme.test"}, "role": {"member"}}); code != http.StatusSeeOther {
		t.Fatalf("add member: %d", code)
	}
	_, body, _ = o.get("/members?org=acme")
	if !strings.Contains(body, `data-member="bob@acme.test"`) || !strings.Contains(body, "Remove from team") {
		t.Fatalf("members page: %.3000s", body)
	}
	_, mb := api.do("GET", "/orgs/acme/members", "", "")
	var bobID string
	for _, m := range mb["members"].([]any) {
		if mm := m.(map[string]any); mm["email"] == "bob@acme.test" {
			bobID = mm["user_id"].(string)
		}
	}
	if code, _, _ := o.post("member-role", url.Values{"org": {"acme"}, "user": {bobID}, "role": {"admin"}}); code != http.StatusSeeOther {
		t.Fatalf("role: %d", code)
	}
	if code, body, _ := o.post("member-add", url.Values{"org": {"acme"}, "email": {"not an email"}, "role": {"member"}}); code != http.StatusBadRequest ||
		!strings.Contains(body, `id="member-err"`) {
		t.Fatalf("bad member email: %d", code)
	}
	if code, _, _ := o.post("member-remove", url.Values{"org": {"acme"}, "user": {bobID}}); code != http.StatusSeeOther {
		t.Fatalf("remove: %d", code)
	}
	if _, body, _ := o.get("/members?org=acme"); strings.Contains(body, "bob@acme.test") {
		t.Fatal("removed member still listed")
	}

	// SCIM token: shown once, on the answer to the form only.
	code, body, _ = o.post("scim-token-create", url.Values{"org": {"acme"}, "name": {"Okta"}})
	tok := regexp.MustCompile(`data-copy="(ssogate_scim_[^"]+)"`).FindStringSubmatch(body)
	if code != 200 || tok == nil || !strings.Contains(body, "shown only once") {
		t.Fatalf("token create: %d %.3000s", code, body)
	}
	if _, body, _ := o.get("/scim?org=acme"); strings.Contains(body, tok[1]) || !strings.Contains(body, `data-token="Okta"`) {
		t.Fatal("the SCIM token is shown again, or not listed")
	}

	// Group mappings: turning on with no owner in the owner group is a
	// lockout: refused with the reason, forcing shows as an option.
	code, body, _ = o.post("group-mappings", url.Values{"org": {"acme"}, "enabled": {"true"}})
	if code != http.StatusConflict || !strings.Contains(body, "owner group") || !strings.Contains(body, `name="force"`) {
		t.Fatalf("mappings lockout: %d %.300s", code, body)
	}

	// Organizations, and the audit log of all of the above.
	if code, _, _ := o.post("org-create", url.Values{"name": {"Research"}, "slug": {"research"}}); code != http.StatusSeeOther {
		t.Fatalf("org create: %d", code)
	}
	code, body, _ = o.post("org-create", url.Values{"name": {"Research"}, "slug": {"research"}})
	if code != http.StatusConflict || !strings.Contains(body, `value="research"`) {
		t.Fatalf("duplicate org: %d", code)
	}
	_, body, _ = o.get("/audit?action=member.")
	if !strings.Contains(body, "bob@acme.test") || strings.Contains(body, "domain.add") {
		t.Fatalf("audit page: %.3000s", body)
	}
}

// TestConnectionSetupIDs: the connection ID handed out before the IdP's
// metadata exists is the same until used, and only its parent org can
// create a connection under it.
func TestConnectionSetupIDs(t *testing.T) {
	t.Parallel()
	idp := samltest.Start(t, samltest.Options{})
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tallow_private_idps\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	acme := apiClient{t, g.URL, signIn(t, g, "owner@acme.test", "acme", "owner", true).APIKey}
	rival := apiClient{t, g.URL, signIn(t, g, "owner@rival.test", "rival", "owner", true).APIKey}
	setupID := func(c apiClient) string {
		code, out := c.do("GET", "/connections/setup?type=saml", "", "")
		if code != 200 {
			t.Fatalf("setup: %d %v", code, out)
		}
		return out["id"].(string)
	}
	create := func(c apiClient, id string) (int, map[string]any) {
		return c.do("POST", "/connections", "application/json", `{"id":"`+id+`","type":"saml","name":"IdP","metadata_url":"`+idp.MetadataURL()+`"}`)
	}
	id := setupID(acme)
	if again := setupID(acme); again != id {
		t.Fatalf("the setup id changed between calls: %s, %s", id, again)
	}
	if other := setupID(rival); other == id {
		t.Fatal("two parent orgs got the same setup id")
	}
	if code, out := create(rival, id); code != 400 || errCode(out) != "invalid_id" {
		t.Fatalf("another tenant used acme's setup id: %d %v", code, out)
	}
	if code, out := create(acme, "00000000000000000000000000"); code != 400 || errCode(out) != "invalid_id" {
		t.Fatalf("a made-up id: %d %v", code, out)
	}
	code, conn := create(acme, id)
	if code != 201 || conn["id"] != id || !strings.Contains(conn["setup"].(map[string]any)["acs_url"].(string), "/saml/"+id+"/acs") {
		t.Fatalf("create with the setup id: %d %v", code, conn)
	}
	if code, out := create(acme, id); code != 409 || errCode(out) != "id_taken" {
		t.Fatalf("the same id twice: %d %v", code, out)
	}
	if next := setupID(acme); next == id {
		t.Fatal("the used setup id is handed out again")
	}
}
