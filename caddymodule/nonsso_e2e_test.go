package caddymodule_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
	"github.com/ssogate/ssogate/internal/oidctest"
	"github.com/ssogate/ssogate/internal/smtptest"
)

var linkRe = regexp.MustCompile(`https?://[^\s"<>]+/\.ssogate/magic/[A-Za-z0-9_-]+`)

// mailLink waits for the n-th mail to arrive at to and returns its link.
func mailLink(t *testing.T, smtp *smtptest.Server, n int, to string) string {
	t.Helper()
	msgs := smtp.WaitFor(t, n, 10*time.Second)
	m := msgs[n-1]
	if len(m.To) != 1 || m.To[0] != to {
		t.Fatalf("mail %d went to %v, want %s", n, m.To, to)
	}
	link := linkRe.FindString(m.Text)
	if link == "" || !strings.Contains(m.HTML, link) {
		t.Fatalf("no sign-in link in both parts of mail %d:\n%s", n, m.Text)
	}
	return link
}

// useLink opens a mailed link in b and presses its button.
func (b *browser) useLink(link string) (int, string, string) {
	b.t.Helper()
	_, page := b.get(link)
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no button form on the link page:\n%s", page)
	}
	resp, body := b.post(link, url.Values{"csrf": {m[1]}})
	return resp.StatusCode, resp.Header.Get("Location"), body
}

func TestNonSSOSignInEndToEnd(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	smtp := smtptest.Start(t)
	op := oidctest.Start(t)
	up := upstream(t)
	global := gatewaytest.Global("ssogate {\n\t\tallow_private_idps\n\t\tdns_resolver " + dns.Addr +
		"\n\t\tmail smtp://" + smtp.Addr + "?starttls=none {\n\t\t\tfrom \"Acme SSO <sso@acme.test>\"\n\t\t}" +
		"\n\t\tsocial corp {\n\t\t\tissuer " + op.Issuer() + "\n\t\t\tclient_id social\n\t\t\tclient_secret social-secret\n\t\t}\n\t}")
	g := gatewaytest.Start(t, global+siteBlock(up.URL), gatewaytest.Options{})
	op.AddClient("social", "social-secret", g.URL+"/.ssogate/social/corp/callback")
	owner := signIn(t, g, "owner@acme.com", "acme", "owner", true)
	api := apiClient{t, g.URL, owner.APIKey}

	// Add Member: the invitation mail's link signs the new member in.
	code, m := api.do("POST", "/orgs/acme/members", "application/json", `{"email":"Bob@Bob.example","role":"member"}`)
	if code != 201 || m["status"] != "invited" || m["email"] != "bob@bob.example" {
		t.Fatalf("invite: %d %v", code, m)
	}
	bob := newBrowser(t)
	code, loc, _ := bob.useLink(mailLink(t, smtp, 1, "bob@bob.example"))
	if code != 303 || loc != "/" {
		t.Fatalf("invite link: %d %q", code, loc)
	}
	resp, body := bob.get(g.URL + "/")
	if resp.StatusCode != 200 || upstreamEmail(t, body) != "bob@bob.example" || !strings.Contains(body, "acme:member") {
		t.Fatalf("after invite link: %d %s", resp.StatusCode, body)
	}
	if _, list := api.do("GET", "/orgs/acme/members", "", ""); !strings.Contains(jsonOf(list), `"email":"bob@bob.example","role":"member","source":"invite","status":"active"`) {
		t.Fatalf("members: %s", jsonOf(list))
	}

	// Sign-in link: same answer for known and unknown emails; mail only for the known one.
	b2 := newBrowser(t)
	_, page := b2.startLogin(g, "nobody@nowhere.example", "/", nil)
	contains(t, page, "Check your email")
	_, page = b2.startLogin(g, "bob@bob.example", "/docs", nil)
	contains(t, page, "Check your email")
	link := mailLink(t, smtp, 2, "bob@bob.example")
	if n := len(smtp.Messages()); n != 2 {
		t.Fatalf("%d mails; the unknown email must get none", n)
	}
	// Another browser cannot use it, and cannot burn it either.
	if code, _, page := newBrowser(t).useLink(link); code != 403 || !strings.Contains(page, "browser where you asked") {
		t.Fatalf("link in another browser: %d", code)
	}
	if code, loc, _ := b2.useLink(link); code != 303 || loc != "/docs" {
		t.Fatalf("link in the right browser: %d %q", code, loc)
	}
	if code, _, page := b2.useLink(link); code != 403 || !strings.Contains(page, "expired or was already used") {
		t.Fatalf("link reused: %d", code)
	}

	// Remove from team: the member's sessions end at once.
	if code, _ := api.do("DELETE", "/orgs/acme/members/bob@bob.example", "", ""); code != 204 {
		t.Fatalf("remove: %d", code)
	}
	for _, br := range []*browser{bob, b2} {
		if resp, _ := br.get(g.URL + "/"); resp.StatusCode != 302 {
			t.Fatalf("removed member still passes: %d", resp.StatusCode)
		}
	}
	// The primary owner can never be removed; bad input changes nothing.
	if code, body := api.do("POST", "/orgs/acme/members", "application/json", `{"email":"a@b@c.example"}`); code != 400 {
		t.Fatalf("bad email: %d %v", code, body)
	}
	if code, _ := api.do("POST", "/orgs/nope/members", "application/json", `{"email":"x@y.example"}`); code != 404 {
		t.Fatalf("unknown org: %d", code)
	}

	// Social login: a non-captured email signs in.
	op.AddUser(oidctest.User{Subject: "carol", Email: "carol@carol.example", EmailVerified: true})
	op.AddUser(oidctest.User{Subject: "dave", Email: "dave@acme.com", EmailVerified: true})
	op.AddUser(oidctest.User{Subject: "erin", Email: "erin@erin.example", EmailVerified: false})
	social := func(subject string) (*browser, int, string) {
		b := newBrowser(t)
		_, page := b.get(g.URL + "/.ssogate/login")
		contains(t, page, "Continue with corp")
		resp, _ := b.get(g.URL + "/.ssogate/social/corp/start?return_to=%2Fhome")
		op.SetNextUser(subject)
		cb, err := op.Login(location(t, resp, 303))
		if err != nil {
			t.Fatal(err)
		}
		resp, page = b.get(cb.String())
		return b, resp.StatusCode, page
	}
	carol, code, _ := social("carol")
	if resp, body := carol.get(g.URL + "/home"); code != 303 || resp.StatusCode != 200 || upstreamEmail(t, body) != "carol@carol.example" {
		t.Fatalf("social sign-in: %d then %d", code, resp.StatusCode)
	}
	if _, code, page := social("erin"); code != 403 || !strings.Contains(page, "not verified") {
		t.Fatalf("unverified social email: %d", code)
	}

	// Capture acme.com and enforce SSO: social login for it is refused, and
	// invites and sign-in links for it stop.
	verifiedDomain(t, api, dns, "acme.com")
	_, conn := api.do("POST", "/connections", "application/json", `{"type":"oidc","name":"corp SSO","issuer":"`+op.Issuer()+`","client_id":"sso","client_secret":"sso-secret"}`)
	op.AddClient("sso", "sso-secret", conn["setup"].(map[string]any)["redirect_uri"].(string))
	sso := newBrowser(t)
	resp, _ = sso.startLogin(g, "dave@acme.com", "/", url.Values{"method": {"sso"}})
	cb, err := op.Login(location(t, resp, 303))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := sso.get(cb.String()); resp.StatusCode != 303 {
		t.Fatalf("SSO test sign-in: %d", resp.StatusCode)
	}
	if code, body := api.do("PUT", "/sso", "application/json", `{"enforced":true}`); code != 200 {
		t.Fatalf("enforce: %d %v", code, body)
	}
	dave, code, page := social("dave")
	if code != 403 || !strings.Contains(page, "requires single sign-on") || !strings.Contains(page, "/.ssogate/login?sso=true") {
		t.Fatalf("social login on a captured domain: %d\n%s", code, page)
	}
	if resp, _ := dave.get(g.URL + "/home"); resp.StatusCode != 302 {
		t.Fatal("a refused social login created a session")
	}
	if code, body := api.do("POST", "/orgs/acme/members", "application/json", `{"email":"frank@acme.com"}`); code != 409 || errCode(body) != "sso_enforced" {
		t.Fatalf("invite on a captured domain: %d %v", code, body)
	}
	before := len(smtp.Messages())
	resp, _ = newBrowser(t).startLogin(g, "dave@acme.com", "/", nil)
	if !strings.HasPrefix(location(t, resp, 303), op.Issuer()) || len(smtp.Messages()) != before {
		t.Fatal("a captured email was offered something other than SSO")
	}
	if !g.Logged(`"reason":"sso_required"`) {
		t.Fatal("the refused social login was not audited")
	}
}

func jsonOf(v any) string {
	b, _ := jsonMarshal(v)
	return string(b)
}
