package caddymodule_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each hop.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	c := gatewaytest.NoRedirectClient()
	c.Jar = jar
	return &browser{t: t, c: c}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, gatewaytest.ReadBody(b.t, resp)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, gatewaytest.ReadBody(b.t, resp)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// startLogin loads the login page and submits an email; it returns the
// response to the submission.
func (b *browser) startLogin(g *gatewaytest.Gateway, email, returnTo string, extra url.Values) (*http.Response, string) {
	b.t.Helper()
	_, page := b.get(g.URL + "/.ssogate/login?return_to=" + url.QueryEscape(returnTo))
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token on the login page:\n%s", page)
	}
	form := url.Values{"email": {email}, "csrf": {m[1]}, "return_to": {returnTo}}
	for k, v := range extra {
		form[k] = v
	}
	return b.post(g.URL+"/.ssogate/login", form)
}

// verifiedDomain adds and verifies a domain for the API key's parent org.
func verifiedDomain(t *testing.T, api apiClient, dns *dnstest.Server, domain string) {
	t.Helper()
	code, d := api.do("POST", "/domains", "application/json", `{"domain":"`+domain+`"}`)
	if code != 201 {
		t.Fatalf("add %s: %d %v", domain, code, d)
	}
	dns.SetTXT(d["txt_name"].(string), d["txt_value"].(string))
	if code, d := api.do("POST", "/domains/"+domain+"/verify", "", ""); code != 200 || d["status"] != "verified" {
		t.Fatalf("verify %s: %d %v", domain, code, d)
	}
}

func location(t *testing.T, resp *http.Response, want int) string {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d (Location %q)", resp.StatusCode, want, resp.Header.Get("Location"))
	}
	return resp.Header.Get("Location")
}

func upstreamEmail(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`"X-Forwarded-Email":\["([^"]*)"\]`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func contains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Fatalf("page lacks %q:\n%s", s, body)
		}
	}
}
