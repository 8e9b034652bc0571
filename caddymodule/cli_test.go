package caddymodule_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/internal/gatewaytest"
)

func TestCLIListModulesAndValidate(t *testing.T) {
	t.Parallel()
	out, code := gatewaytest.RunCLI(t, "..", "list-modules")
	if code != 0 || !strings.Contains(out, "\nssogate\n") || !strings.Contains(out, "http.handlers.ssogate") {
		t.Fatalf("list-modules: exit %d\n%s", code, out)
	}
	out, code = gatewaytest.RunCLI(t, "..", "validate", "--config", "Caddyfile.example")
	if code != 0 || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate Caddyfile.example: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(bad, []byte(":8080 {\n\tssogate {\n\t\tsite_url https://app.example.com\n\t\tcolour blue\n\t}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = gatewaytest.RunCLI(t, "..", "validate", "--config", bad, "--adapter", "caddyfile")
	if code == 0 || !strings.Contains(out, `unknown ssogate handler option \"colour\"`) || !strings.Contains(out, "Caddyfile:4") {
		t.Fatalf("validate a broken Caddyfile: exit %d\n%s", code, out)
	}
}

func TestCLIAdminBootstrap(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	g := gatewaytest.Start(t, gatewaytest.Global()+siteBlock(up.URL), gatewaytest.Options{})
	out, code := gatewaytest.RunCLI(t, "..", "admin", "bootstrap", "--parent", "Acme", "--org", "acme", "--owner", "Alice@Acme.com", "--address", g.Admin, "--json")
	if code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s", code, out)
	}
	var res struct {
		ParentID string `json:"parent_id"`
		OrgID    string `json:"org_id"`
		APIKey   string `json:"api_key"`
		LoginURL string `json:"login_url"`
	}
	if err := json.Unmarshal([]byte(lastLine(out)), &res); err != nil || res.APIKey == "" || res.ParentID == "" || !strings.HasPrefix(res.LoginURL, g.URL+"/.ssogate/magic/") {
		t.Fatalf("bootstrap output: %v\n%s", err, out)
	}
	api := apiClient{t, g.URL, res.APIKey}
	if code, body := api.do("GET", "/orgs/acme/members", "", ""); code != 200 || !strings.Contains(jsonOf(body), `"role":"primary_owner"`) {
		t.Fatalf("API key from bootstrap: %d %v", code, body)
	}
	b := newBrowser(t)
	if code, loc, _ := b.useLink(res.LoginURL); code != 303 || loc != "/" {
		t.Fatalf("bootstrap sign-in link: %d %q", code, loc)
	}
	if resp, body := b.get(g.URL + "/"); resp.StatusCode != 200 || !strings.Contains(body, "acme:primary_owner") {
		t.Fatalf("after the link: %d %s", resp.StatusCode, body)
	}
	// Clear errors: a taken slug, bad input, no server.
	if out, code := gatewaytest.RunCLI(t, "..", "admin", "bootstrap", "--parent", "Other", "--org", "acme", "--owner", "b@b.example", "--address", g.Admin); code == 0 || !strings.Contains(out, "exists already") {
		t.Fatalf("taken slug: exit %d\n%s", code, out)
	}
	if out, code := gatewaytest.RunCLI(t, "..", "admin", "bootstrap", "--parent", "X", "--org", "Bad Slug", "--owner", "b@b.example", "--address", g.Admin); code == 0 || !strings.Contains(out, "must be a slug") {
		t.Fatalf("bad slug: exit %d\n%s", code, out)
	}
	if out, code := gatewaytest.RunCLI(t, "..", "admin", "bootstrap", "--parent", "X", "--org", "x", "--owner", "b@b.example", "--address", "127.0.0.1:1"); code == 0 || !strings.Contains(out, "is it running?") {
		t.Fatalf("no server: exit %d\n%s", code, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
