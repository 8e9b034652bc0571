package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/gatewaytest"
)

// upstream echoes the request headers it received as JSON.
func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(s.Close)
	return s
}

// siteBlock is a site guarded by ssogate in front of up, with the test
// sign-in route.
func siteBlock(up string, opts ...string) string {
	return fmt.Sprintf(`http://127.0.0.1:{PORT} {
	ssogate_testlogin /__test/login
	ssogate {
		site_url http://127.0.0.1:{PORT}
		%s
	}
	handle /handled/* {
		respond "handled without ssogate?"
	}
	reverse_proxy %s
}
`, strings.Join(opts, "\n\t\t"), strings.TrimPrefix(up, "http://"))
}

// signIn signs a user in through the test route and returns the result.
func signIn(t *testing.T, g *gatewaytest.Gateway, email, org, role string, apiKey bool) gatewaytest.LoginResult {
	t.Helper()
	return signInUnder(t, g, email, org, role, "", apiKey)
}

// signInUnder is signIn with the org created under the parent org of the
// existing org `under`.
func signInUnder(t *testing.T, g *gatewaytest.Gateway, email, org, role, under string, apiKey bool) gatewaytest.LoginResult {
	t.Helper()
	q := url.Values{"email": {email}, "org": {org}, "role": {role}, "under": {under}}
	if apiKey {
		q.Set("apikey", "1")
	}
	resp, err := http.Post(g.URL+"/__test/login?"+q.Encode(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body := gatewaytest.ReadBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("test sign-in: %d %s", resp.StatusCode, body)
	}
	var res gatewaytest.LoginResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

type echoed struct {
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

// get makes a request with the session cookie and extra headers.
func get(t *testing.T, base, path, cookie string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "ssogate_session="+cookie)
	}
	for k, v := range hdr {
		req.Header[k] = []string{v} // raw: keep odd spellings as sent
	}
	resp, err := gatewaytest.NoRedirectClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

var jsonMarshal = json.Marshal
