package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ssogate/ssogate/internal/gatewaytest"
)

func TestGuardEndToEnd(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tstorage bolt\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	origin := g.URL

	t.Run("no session: browser is sent to sign in", func(t *testing.T) {
		resp := get(t, g.URL, "/reports/q3?x=1", "", map[string]string{"Accept": "text/html"})
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || loc != "/.ssogate/login?return_to=%2Freports%2Fq3%3Fx%3D1" {
			t.Fatalf("got %d Location %q", resp.StatusCode, loc)
		}
	})
	t.Run("handle blocks are guarded too", func(t *testing.T) {
		resp := get(t, g.URL, "/handled/x", "", map[string]string{"Accept": "application/json"})
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("handle block without session: %d", resp.StatusCode)
		}
	})
	t.Run("no session: API calls get 401 JSON", func(t *testing.T) {
		for _, hdr := range []map[string]string{
			{"Accept": "application/json"},
			{"X-Requested-With": "XMLHttpRequest"},
			{"Sec-Fetch-Mode": "cors"},
		} {
			resp := get(t, g.URL, "/api/data", "", hdr)
			body := gatewaytest.ReadBody(t, resp)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthenticated"`) {
				t.Fatalf("%v: got %d %s", hdr, resp.StatusCode, body)
			}
		}
		resp, err := http.Post(g.URL+"/api/data", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST without session: %d", resp.StatusCode)
		}
	})

	login := signIn(t, g, "alice@acme.com", "acme", "admin", false)

	t.Run("signed in: identity reaches upstream, spoofed headers do not", func(t *testing.T) {
		resp := get(t, g.URL, "/hello", login.Cookie, map[string]string{
			"X-Forwarded-Email":  "mallory@evil.com",
			"x_forwarded_email":  "mallory@evil.com",
			"X-SSOGATE-ORGS":     "acme:owner",
			"x-forwarded-groups": "admins",
			"X_Forwarded_User":   "root",
		})
		body := gatewaytest.ReadBody(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
		var e echoed
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, "mallory") || strings.Contains(body, "root") || strings.Contains(body, "admins") {
			t.Fatalf("spoofed header reached upstream: %s", body)
		}
		want := map[string]string{"X-Forwarded-Email": "alice@acme.com", "X-Forwarded-User": login.UserID, "X-Ssogate-Orgs": "acme:admin"}
		for k, v := range want {
			if got := e.Headers[k]; len(got) != 1 || got[0] != v {
				t.Errorf("%s = %v, want [%s]", k, got, v)
			}
		}
		verifyJWT(t, g, e.Headers["X-Ssogate-Jwt-Assertion"], origin, "alice@acme.com")
	})
	t.Run("tampered cookie is refused", func(t *testing.T) {
		bad := login.Cookie[:10] + "x" + login.Cookie[11:]
		if bad == login.Cookie {
			bad = login.Cookie[:10] + "y" + login.Cookie[11:]
		}
		resp := get(t, g.URL, "/hello", bad, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("tampered cookie: %d", resp.StatusCode)
		}
	})
	t.Run("forward auth", func(t *testing.T) {
		resp := get(t, g.URL, "/.ssogate/auth", login.Cookie, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Forwarded-Email") != "alice@acme.com" || resp.Header.Get("X-Ssogate-Jwt-Assertion") == "" {
			t.Fatalf("forward auth with session: %d %v", resp.StatusCode, resp.Header)
		}
		resp = get(t, g.URL, "/.ssogate/auth", "", map[string]string{"X-Forwarded-Uri": "//evil.com/x", "Accept": "text/html"})
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != origin+"/.ssogate/login?return_to=%2F" {
			t.Fatalf("forward auth without session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp = get(t, g.URL, "/.ssogate/auth", "", map[string]string{"Accept": "application/json"})
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forward auth API without session: %d", resp.StatusCode)
		}
	})
	t.Run("health", func(t *testing.T) {
		resp := get(t, g.URL, "/.ssogate/healthz", "", nil)
		body := gatewaytest.ReadBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, `"storage":"bolt"`) || !strings.Contains(body, `"status":"ok"`) {
			t.Fatalf("healthz: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("logout ends the session", func(t *testing.T) {
		other := signIn(t, g, "alice@acme.com", "acme", "admin", false)
		resp := get(t, g.URL, "/.ssogate/logout", login.Cookie, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
		resp = get(t, g.URL, "/hello", login.Cookie, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("after logout: %d", resp.StatusCode)
		}
		resp = get(t, g.URL, "/hello", other.Cookie, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("logout ended the user's other session: %d", resp.StatusCode)
		}
	})
}

func verifyJWT(t *testing.T, g *gatewaytest.Gateway, vals []string, audience, email string) {
	t.Helper()
	if len(vals) != 1 {
		t.Fatalf("JWT header = %v", vals)
	}
	resp := get(t, g.URL, "/.ssogate/.well-known/jwks.json", "", nil)
	body := gatewaytest.ReadBody(t, resp)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v %s", err, body)
	}
	tok, err := jwt.ParseSigned(vals[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		jwt.Claims
		Email string `json:"email"`
	}
	if err := tok.Claims(&set, &c); err != nil {
		t.Fatalf("JWT does not verify with the published JWKS: %v", err)
	}
	if err := c.Validate(jwt.Expected{Issuer: "ssogate", AnyAudience: jwt.Audience{audience}}); err != nil {
		t.Fatal(err)
	}
	if c.Email != email || tok.Headers[0].KeyID == "" {
		t.Fatalf("claims %+v kid %q", c, tok.Headers[0].KeyID)
	}
}

func TestOrgRestriction(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL, "org acme"), gatewaytest.Options{})
	member := signIn(t, g, "bob@acme.com", "acme", "member", false)
	stranger := signIn(t, g, "eve@other.com", "other", "owner", false)
	resp := get(t, g.URL, "/", member.Cookie, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("member of acme: %d", resp.StatusCode)
	}
	resp = get(t, g.URL, "/", stranger.Cookie, map[string]string{"Accept": "text/html"})
	body := gatewaytest.ReadBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not a member") {
		t.Fatalf("non-member: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("403 page lacks security headers: %v", resp.Header)
	}
}

func TestSignOutEverywhereAPI(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	owner := signIn(t, g, "olga@acme.com", "acme", "owner", true)
	bob1 := signIn(t, g, "bob@acme.com", "acme", "member", false)
	bob2 := signIn(t, g, "bob@acme.com", "acme", "member", false)
	outsider := signIn(t, g, "zed@zeta.com", "zeta", "member", false)

	do := func(method, path, auth string) (int, string) {
		req, _ := http.NewRequest(method, g.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, gatewaytest.ReadBody(t, resp)
	}
	if code, body := do("DELETE", "/.ssogate/api/v1/sessions?user=bob@acme.com", "Bearer wrong"); code != 401 {
		t.Fatalf("wrong key: %d %s", code, body)
	}
	if code, _ := do("DELETE", "/.ssogate/api/v1/sessions?user=zed@zeta.com", "Bearer "+owner.APIKey); code != 404 {
		t.Fatalf("another parent org's user: %d, want 404", code)
	}
	if code, body := do("GET", "/.ssogate/api/v1/sessions?user=bob@acme.com", "Bearer "+owner.APIKey); code != 200 || strings.Count(body, `"method":"test"`) != 2 {
		t.Fatalf("list: %d %s", code, body)
	}
	// A signed-in owner without the CSRF header is refused.
	req, _ := http.NewRequest("DELETE", g.URL+"/.ssogate/api/v1/sessions?user=bob@acme.com", nil)
	req.Header.Set("Cookie", "ssogate_session="+owner.Cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := gatewaytest.ReadBody(t, resp); resp.StatusCode != 403 || !strings.Contains(body, "csrf") {
		t.Fatalf("cookie without CSRF header: %d %s", resp.StatusCode, body)
	}
	for _, c := range []string{bob1.Cookie, bob2.Cookie} {
		if r := get(t, g.URL, "/", c, nil); r.StatusCode != 200 {
			t.Fatalf("bob before revoke: %d", r.StatusCode)
		}
	}
	code, body := do("DELETE", "/.ssogate/api/v1/sessions?user=bob@acme.com", "Bearer "+owner.APIKey)
	if code != 200 || !strings.Contains(body, `"revoked":2`) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	for _, c := range []string{bob1.Cookie, bob2.Cookie} {
		r := get(t, g.URL, "/", c, nil)
		r.Body.Close()
		if r.StatusCode != http.StatusFound {
			t.Fatalf("bob after revoke: %d", r.StatusCode)
		}
	}
	if r := get(t, g.URL, "/", outsider.Cookie, nil); r.StatusCode != 200 {
		t.Fatalf("revoke touched another user: %d", r.StatusCode)
	}
}

func TestAdminAPIRateLimitsKeyGuessing(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	good := signIn(t, g, "olga@acme.com", "acme", "owner", true).APIKey
	try := func(key string) (int, string) {
		req, _ := http.NewRequest("GET", g.URL+"/.ssogate/api/v1/domains", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := 0; i < 30; i++ {
		if code, _ := try("sgk_guess"); code != 401 {
			t.Fatalf("guess %d: %d", i+1, code)
		}
	}
	code, retry := try("sgk_guess")
	if code != 429 || retry == "" {
		t.Fatalf("after 30 failures: %d, Retry-After %q", code, retry)
	}
	// The address is slowed down, even with the right key, until the window ends.
	if code, _ := try(good); code != 429 {
		t.Fatalf("right key from a throttled address: %d", code)
	}
}
