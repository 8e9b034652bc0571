package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/dnstest"
	"github.com/ssogate/ssogate/internal/gatewaytest"
)

type apiClient struct {
	t    *testing.T
	base string
	key  string
}

func (c apiClient) do(method, path, ctype, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+"/.ssogate/api/v1"+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	raw := gatewaytest.ReadBody(c.t, resp)
	var out map[string]any
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			c.t.Fatalf("%s %s: %d non-JSON body %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestDomainCaptureAPI(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global("ssogate {\n\t\tdns_resolver "+dns.Addr+"\n\t\tdomain_check_interval 100ms\n\t\tblocked_domains partner-mail.example\n\t}")+siteBlock(up.URL), gatewaytest.Options{})
	acme := apiClient{t, g.URL, signIn(t, g, "owner@acme.com", "acme", "owner", true).APIKey}
	rival := apiClient{t, g.URL, signIn(t, g, "owner@rival.com", "rival", "owner", true).APIKey}

	// Bad input: clear errors, nothing stored.
	for _, tc := range []struct {
		ctype, body, code string
		status            int
	}{
		{"application/json", `{"domain":"gmail.com"}`, "domain_consumer", 400},
		{"application/json", `{"domain":"partner-mail.example"}`, "domain_consumer", 400},
		{"application/json", `{"domain":"co.uk"}`, "domain_public_suffix", 400},
		{"application/json", `{"domain":"*.acme.com"}`, "domain_wildcard", 400},
		{"application/json", `{"domain":"127.0.0.1"}`, "domain_ip", 400},
		{"application/json", `{"domain":""}`, "domain_empty", 400},
		{"application/json", `{"domain":"acme.com","extra":1}`, "invalid_json", 400},
		{"application/json", `{"domain":`, "invalid_json", 400},
		{"application/json", `{"domain":"a.com"} {}`, "invalid_json", 400},
		{"text/plain", `{"domain":"acme.com"}`, "unsupported_media_type", 415},
		{"application/json", `{"domain":"` + strings.Repeat("a", 70000) + `"}`, "too_large", 413},
	} {
		if code, body := acme.do("POST", "/domains", tc.ctype, tc.body); code != tc.status || errCode(body) != tc.code {
			t.Errorf("POST %.40s: %d %v, want %d %s", tc.body, code, body, tc.status, tc.code)
		}
	}
	if _, body := acme.do("GET", "/domains", "", ""); len(body["domains"].([]any)) != 0 {
		t.Fatalf("refused domains were stored: %v", body)
	}

	code, d := acme.do("POST", "/domains", "application/json", `{"domain":"Acme.COM."}`)
	if code != 201 || d["domain"] != "acme.com" || d["status"] != "pending" || d["txt_name"] != "_ssogate-challenge.acme.com" {
		t.Fatalf("add: %d %v", code, d)
	}
	txtValue := d["txt_value"].(string)
	if _, leaked := d["token"]; leaked || !strings.HasPrefix(txtValue, "ssogate-domain-verification=") {
		t.Fatalf("add answer: %v", d)
	}
	// The rival may hold a pending claim too.
	if code, _ := rival.do("POST", "/domains", "application/json", `{"domain":"acme.com"}`); code != 201 {
		t.Fatalf("rival pending claim: %d", code)
	}
	// Refresh before publishing: still pending, with the reason.
	if code, d := acme.do("POST", "/domains/acme.com/verify", "", ""); code != 200 || d["status"] != "pending" || !strings.Contains(d["last_error"].(string), "no matching TXT record") {
		t.Fatalf("verify before publishing: %d %v", code, d)
	}
	dns.SetTXT("_ssogate-challenge.acme.com", "unrelated", txtValue)
	if code, d := acme.do("POST", "/domains/acme.com/verify", "", ""); code != 200 || d["status"] != "verified" || d["verified_at"] == nil {
		t.Fatalf("verify after publishing: %d %v", code, d)
	}
	if code, body := rival.do("POST", "/domains/acme.com/verify", "", ""); code != 409 || errCode(body) != "domain_claimed" {
		t.Fatalf("rival verify: %d %v", code, body)
	}
	if code, body := rival.do("GET", "/domains/beta.com", "", ""); code != 404 || errCode(body) != "not_found" {
		t.Fatalf("unknown domain: %d %v", code, body)
	}

	// The background worker verifies without a button press.
	_, b := acme.do("POST", "/domains", "application/json", `{"domain":"beta.acme.com"}`)
	dns.SetTXT("_ssogate-challenge.beta.acme.com", b["txt_value"].(string))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, d := acme.do("GET", "/domains/beta.acme.com", "", ""); d["status"] == "verified" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background worker did not verify beta.acme.com")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if code, _ := acme.do("DELETE", "/domains/acme.com", "", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := acme.do("GET", "/domains/acme.com", "", ""); code != 404 {
		t.Fatalf("after delete: %d", code)
	}
	// Released: now the rival can verify its own record.
	_, rd := rival.do("GET", "/domains/acme.com", "", "")
	dns.SetTXT("_ssogate-challenge.acme.com", rd["txt_value"].(string))
	if code, d := rival.do("POST", "/domains/acme.com/verify", "", ""); code != 200 || d["status"] != "verified" {
		t.Fatalf("rival after release: %d %v", code, d)
	}
	for _, action := range []string{`"action":"domain.add"`, `"action":"domain.verify"`, `"action":"domain.delete"`} {
		if !g.Logged(action) {
			t.Errorf("no audit log line with %s", action)
		}
	}
}
