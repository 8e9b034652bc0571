package oidcidp

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestRedirectWildcard(t *testing.T) {
	c := &client{redirects: []string{"http://gw/.ssogate/oidc/*/callback", "http://rp/cb"}}
	for u, want := range map[string]bool{
		"http://rp/cb": true,
		"http://gw/.ssogate/oidc/abc-1_Z/callback": true,
		"http://gw/.ssogate/oidc//callback":        false,
		"http://gw/.ssogate/oidc/a/b/callback":     false,
		"http://gw/.ssogate/oidc/../callback":      false,
		"http://gw/.ssogate/oidc/a/callback?x=1":   false,
		"http://gw/.ssogate/oidc/a%2Fb/callback":   false,
		"http://gw.evil/.ssogate/oidc/a/callback":  false,
		"http://rp/cb2": false,
	} {
		if got := c.allows(u); got != want {
			t.Errorf("allows(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestSignInForm(t *testing.T) {
	op, err := Start(Options{LoginForm: true, Name: "Test OP"})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	op.AddClient("rp", "pw", "http://rp.example/*/cb")
	op.AddUser(User{Subject: "u1", Email: "ann@example.com", EmailVerified: true, Password: "s3cret"})
	sum := sha256.Sum256([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"))
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {"http://rp.example/c1/cb"}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"st"}, "nonce": {"n1"}, "login_hint": {"ann@example.com"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := c.Get(op.Issuer() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `name="password"`) || !strings.Contains(string(page), `value="ann@example.com"`) {
		t.Fatalf("GET /authorize: %d %s", resp.StatusCode, page)
	}
	post := func(password string, hdr map[string]string) *http.Response {
		f := url.Values{}
		for k, v := range q {
			f[k] = v
		}
		f.Set("username", "ann@example.com")
		f.Set("password", password)
		req, _ := http.NewRequest("POST", op.Issuer()+"/authorize", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("wrong", nil); resp.StatusCode != 200 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if resp := post("s3cret", map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != 403 {
		t.Fatalf("cross-site sign-in: %d", resp.StatusCode)
	}
	resp = post("s3cret", nil)
	loc, _ := resp.Location()
	if resp.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), "http://rp.example/c1/cb?") || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in: %d %v", resp.StatusCode, loc)
	}
	if !op.RemoveUser("ANN@example.com") || op.RemoveUser("ann@example.com") {
		t.Fatal("RemoveUser")
	}
	if resp := post("s3cret", nil); resp.StatusCode != 200 {
		t.Fatalf("removed user: %d", resp.StatusCode)
	}
}
