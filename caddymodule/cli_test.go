package caddymodule_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// adminCLI runs `ssogate admin <args> --address <gateway>`.
type adminCLI struct {
	t *testing.T
	g *gatewaytest.Gateway
}

func (c adminCLI) run(args ...string) (string, int) {
	c.t.Helper()
	return gatewaytest.RunCLI(c.t, "..", append(append([]string{"admin"}, args...), "--address", c.g.Admin)...)
}

// ok runs a command that must succeed and returns its output.
func (c adminCLI) ok(args ...string) string {
	c.t.Helper()
	out, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("ssogate admin %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// json runs a command with --json and decodes its last line into v.
func (c adminCLI) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(lastLine(out)), v); err != nil {
		c.t.Fatalf("ssogate admin %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs a command that must fail with a message containing want.
func (c adminCLI) fails(want string, args ...string) {
	c.t.Helper()
	out, code := c.run(args...)
	if code == 0 || !strings.Contains(out, want) {
		c.t.Fatalf("ssogate admin %s: exit %d, want an error with %q\n%s", strings.Join(args, " "), code, want, out)
	}
}

type cliBootstrap struct {
	ParentID string `json:"parent_id"`
	OrgID    string `json:"org_id"`
	APIKey   string `json:"api_key"`
}

// The operator commands: each through Caddy's admin endpoint, with --json
// and human output, clear errors for wrong arguments, and audit events.
func TestCLIAdminCommands(t *testing.T) {
	t.Parallel()
	g, dns, smtp := parentsGateway(t)
	cli := adminCLI{t, g}
	var acme, globex cliBootstrap
	cli.json(&acme, "bootstrap", "--parent", "Acme", "--org", "acme", "--owner", "owner@acme.com")
	cli.json(&globex, "bootstrap", "--parent", "Globex", "--org", "globex", "--owner", "owner@globex.com")
	acmeAPI := apiClient{t, g.URL, acme.APIKey}
	globexAPI := apiClient{t, g.URL, globex.APIKey}

	t.Run("parent list", func(t *testing.T) {
		cli := adminCLI{t, g}
		var res struct {
			Parents []struct {
				ID     string   `json:"id"`
				Name   string   `json:"name"`
				Orgs   int      `json:"orgs"`
				Owners []string `json:"owners"`
			} `json:"parents"`
		}
		cli.json(&res, "parent", "list")
		if len(res.Parents) != 2 {
			t.Fatalf("parents: %+v", res.Parents)
		}
		a, b := res.Parents[0], res.Parents[1]
		if a.ID != acme.ParentID || a.Name != "Acme" || a.Orgs != 1 || !slices.Equal(a.Owners, []string{"owner@acme.com"}) ||
			b.ID != globex.ParentID || b.Name != "Globex" || !slices.Equal(b.Owners, []string{"owner@globex.com"}) {
			t.Fatalf("parents: %+v", res.Parents)
		}
		out := cli.ok("parent", "list")
		for _, s := range []string{"ID", "NAME", "ORGS", "OWNERS", acme.ParentID, "Acme", "owner@acme.com", "Globex"} {
			if !strings.Contains(out, s) {
				t.Fatalf("human parent list lacks %q:\n%s", s, out)
			}
		}
		cli.fails(`unknown command "extra"`, "parent", "list", "extra")
		cli.fails(`unknown command "lst"`, "parent", "lst")
	})

	t.Run("org create", func(t *testing.T) {
		cli := adminCLI{t, g}
		// By parent name; the slug comes from the name.
		var o struct {
			ID       string `json:"id"`
			Slug     string `json:"slug"`
			Name     string `json:"name"`
			ParentID string `json:"parent_id"`
		}
		cli.json(&o, "org", "create", "--parent", "acme", "--name", "Acme Research")
		if o.ID == "" || o.Slug != "acme-research" || o.Name != "Acme Research" || o.ParentID != acme.ParentID {
			t.Fatalf("org create: %+v", o)
		}
		if got := orgSlugs(t, acmeAPI); !slices.Equal(got, []string{"acme", "acme-research"}) {
			t.Fatalf("acme's orgs after org create: %v", got)
		}
		// By parent ID, with a slug; human output.
		out := cli.ok("org", "create", "--parent", globex.ParentID, "--name", "Globex Labs", "--slug", "GLX-labs")
		if !strings.Contains(out, "glx-labs") || !strings.Contains(out, globex.ParentID) {
			t.Fatalf("human org create:\n%s", out)
		}
		if got := orgSlugs(t, globexAPI); !slices.Equal(got, []string{"globex", "glx-labs"}) {
			t.Fatalf("globex's orgs after org create: %v", got)
		}
		cli.fails("is taken", "org", "create", "--parent", globex.ParentID, "--name", "Acme Research")
		cli.fails("slug must be", "org", "create", "--parent", globex.ParentID, "--name", "X", "--slug", "bad slug!")
		cli.fails("pass --slug", "org", "create", "--parent", globex.ParentID, "--name", "Ω")
		cli.fails("no parent organization with ID or name", "org", "create", "--parent", "Initech", "--name", "Initech")
		cli.fails(`required flag(s) "name" not set`, "org", "create", "--parent", "Acme")
		if !g.Logged(`"action":"org.create","actor":"operator","target":"acme-research"`) {
			t.Fatalf("no audit event for org create")
		}
	})

	t.Run("api-key", func(t *testing.T) {
		cli := adminCLI{t, g}
		var k struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			ParentID string `json:"parent_id"`
			APIKey   string `json:"api_key"`
		}
		cli.json(&k, "api-key", "create", "--parent", acme.ParentID, "--name", "ci")
		if k.ID == "" || k.Name != "ci" || k.ParentID != acme.ParentID || !strings.HasPrefix(k.APIKey, "ssogate_key_") {
			t.Fatalf("api-key create: %+v", k)
		}
		ci := apiClient{t, g.URL, k.APIKey}
		if code, body := ci.do("GET", "/orgs", "", ""); code != 200 {
			t.Fatalf("the new key: %d %v", code, body)
		}
		out := cli.ok("api-key", "create", "--parent", "Acme", "--name", "deploy")
		if !strings.Contains(out, "ssogate_key_") || !strings.Contains(out, "shown once") {
			t.Fatalf("human api-key create:\n%s", out)
		}
		var list struct {
			ParentID string `json:"parent_id"`
			Keys     []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"keys"`
		}
		cli.json(&list, "api-key", "list", "--parent", acme.ParentID)
		var names []string
		for _, key := range list.Keys {
			names = append(names, key.Name)
		}
		slices.Sort(names)
		if list.ParentID != acme.ParentID || !slices.Equal(names, []string{"bootstrap", "ci", "deploy"}) {
			t.Fatalf("api-key list: %+v", list)
		}
		out = cli.ok("api-key", "list", "--parent", acme.ParentID)
		if !strings.Contains(out, k.ID) || !strings.Contains(out, "deploy") || strings.Contains(out, "ssogate_key_") {
			t.Fatalf("human api-key list (no secrets):\n%s", out)
		}
		// Another parent org's key is not found; nothing is revoked.
		cli.fails("no API key", "api-key", "revoke", "--parent", globex.ParentID, "--id", k.ID)
		if code, _ := ci.do("GET", "/orgs", "", ""); code != 200 {
			t.Fatalf("a revoke for the wrong parent org revoked the key: %d", code)
		}
		var rev struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			Revoked bool   `json:"revoked"`
		}
		cli.json(&rev, "api-key", "revoke", "--parent", acme.ParentID, "--id", k.ID)
		if rev.ID != k.ID || rev.Name != "ci" || !rev.Revoked {
			t.Fatalf("api-key revoke: %+v", rev)
		}
		if code, _ := ci.do("GET", "/orgs", "", ""); code != 401 {
			t.Fatalf("a revoked key still works: %d", code)
		}
		cli.fails("no API key", "api-key", "revoke", "--parent", acme.ParentID, "--id", k.ID)
		cli.fails("--name is required", "api-key", "create", "--parent", acme.ParentID, "--name", " ")
		cli.fails(`required flag(s) "parent" not set`, "api-key", "list")
		if !g.Logged(`"action":"api_key.create","actor":"operator","target":"ci"`) || !g.Logged(`"action":"api_key.revoke","actor":"operator","target":"ci"`) {
			t.Fatalf("no audit events for api keys")
		}
	})

	t.Run("domain list", func(t *testing.T) {
		cli := adminCLI{t, g}
		verifiedDomain(t, acmeAPI, dns, "acme.com")
		if code, body := acmeAPI.do("POST", "/domains", "application/json", `{"domain":"acme.org"}`); code != 201 {
			t.Fatalf("add acme.org: %d %v", code, body)
		}
		if code, body := globexAPI.do("POST", "/domains", "application/json", `{"domain":"globex.com"}`); code != 201 {
			t.Fatalf("add globex.com: %d %v", code, body)
		}
		type domainList struct {
			Domains []struct {
				Domain     string `json:"domain"`
				ParentID   string `json:"parent_id"`
				ParentName string `json:"parent_name"`
				Status     string `json:"status"`
				TXTName    string `json:"txt_name"`
			} `json:"domains"`
		}
		var all domainList
		cli.json(&all, "domain", "list")
		got := map[string]string{}
		for _, d := range all.Domains {
			got[d.Domain] = d.ParentName + ":" + d.Status
		}
		want := map[string]string{"acme.com": "Acme:verified", "acme.org": "Acme:pending", "globex.com": "Globex:pending"}
		if len(got) != len(want) || got["acme.com"] != want["acme.com"] || got["acme.org"] != want["acme.org"] || got["globex.com"] != want["globex.com"] {
			t.Fatalf("domain list: %v", got)
		}
		var one domainList
		cli.json(&one, "domain", "list", "--parent", globex.ParentID)
		if len(one.Domains) != 1 || one.Domains[0].Domain != "globex.com" || one.Domains[0].TXTName != "_ssogate-challenge.globex.com" {
			t.Fatalf("domain list --parent: %+v", one)
		}
		out := cli.ok("domain", "list")
		for _, s := range []string{"DOMAIN", "STATUS", "acme.com", "verified", "globex.com", "pending", "Globex"} {
			if !strings.Contains(out, s) {
				t.Fatalf("human domain list lacks %q:\n%s", s, out)
			}
		}
		cli.fails("no parent organization with ID or name", "domain", "list", "--parent", "nope")
	})

	t.Run("session revoke", func(t *testing.T) {
		cli := adminCLI{t, g}
		passes := func(cookie string) bool {
			resp := get(t, g.URL, "/", cookie, nil)
			resp.Body.Close()
			return resp.StatusCode == 200
		}
		bob := signIn(t, g, "bob@acme.com", "acme", "member", false)
		bob2 := signIn(t, g, "bob@acme.com", "acme", "member", false)
		carol := signIn(t, g, "carol@globex.com", "globex", "member", false)
		dave := signIn(t, g, "dave@globex.com", "glx-labs", "admin", false)
		for _, c := range []string{bob.Cookie, bob2.Cookie, carol.Cookie, dave.Cookie} {
			if !passes(c) {
				t.Fatal("a fresh session does not pass")
			}
		}
		var res struct {
			UserID  string `json:"user_id"`
			Email   string `json:"email"`
			Revoked int    `json:"revoked"`
		}
		cli.json(&res, "session", "revoke", "--user", "Bob@Acme.com")
		if res.UserID != bob.UserID || res.Email != "bob@acme.com" || res.Revoked != 2 {
			t.Fatalf("session revoke --user: %+v", res)
		}
		if passes(bob.Cookie) || passes(bob2.Cookie) || !passes(carol.Cookie) {
			t.Fatal("after revoking bob: bob still in, or carol out")
		}
		out := cli.ok("session", "revoke", "--parent", "Globex")
		if !strings.Contains(out, "2 sessions") {
			t.Fatalf("human session revoke --parent:\n%s", out)
		}
		if passes(carol.Cookie) || passes(dave.Cookie) {
			t.Fatal("after revoking Globex: its members still in")
		}
		// By user ID too.
		again := signIn(t, g, "bob@acme.com", "acme", "member", false)
		cli.json(&res, "session", "revoke", "--user", bob.UserID)
		if res.Revoked != 1 || passes(again.Cookie) {
			t.Fatalf("session revoke by user ID: %+v", res)
		}
		cli.fails("give exactly one of --user", "session", "revoke", "--user", "bob@acme.com", "--parent", "Acme")
		cli.fails("give exactly one of --user", "session", "revoke")
		cli.fails("no user", "session", "revoke", "--user", "nobody@acme.com")
		if !g.Logged(`"action":"session.revoke_all","actor":"operator","target":"bob@acme.com"`) ||
			!g.Logged(`"action":"session.revoke_parent","actor":"operator"`) {
			t.Fatalf("no audit events for session revocation")
		}
	})

	t.Run("merge propose", func(t *testing.T) {
		cli := adminCLI{t, g}
		var res struct {
			Proposal struct {
				ID              string `json:"id"`
				Status          string `json:"status"`
				Side            string `json:"side"`
				ProposedBy      string `json:"proposed_by"`
				SurvivingParent struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"surviving_parent"`
				IncomingParent struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"incoming_parent"`
				Orgs []struct {
					Name string `json:"name"`
				} `json:"orgs"`
			} `json:"proposal"`
			Notified int `json:"notified"`
		}
		cli.json(&res, "merge", "propose", "--from", globex.ParentID, "--into", "Acme", "--by", "Owner@Acme.com")
		p := res.Proposal
		if p.ID == "" || p.Status != "proposed" || p.Side != "surviving" || p.ProposedBy != "owner@acme.com" ||
			p.SurvivingParent.ID != acme.ParentID || p.IncomingParent.ID != globex.ParentID || len(p.Orgs) != 2 {
			t.Fatalf("merge propose: %+v", res)
		}
		// dave is an admin of glx-labs: owners and admins of both sides.
		if res.Notified != 3 {
			t.Fatalf("notified %d, want 3 (owner@acme.com, owner@globex.com, dave@globex.com)", res.Notified)
		}
		var to []string
		for deadline := time.Now().Add(10 * time.Second); len(to) < 3 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			to = nil
			for _, m := range smtp.Messages() {
				if m.Subject == "Proposal to merge Globex into Acme" && strings.Contains(m.Text, g.URL+"/.ssogate/settings/identity") {
					to = append(to, m.To...)
				}
			}
		}
		slices.Sort(to)
		if want := []string{"dave@globex.com", "owner@acme.com", "owner@globex.com"}; !slices.Equal(to, want) {
			t.Fatalf("merge mails to %v, want %v", to, want)
		}
		// Both sides see it in the admin API.
		for _, api := range []apiClient{acmeAPI, globexAPI} {
			if code, body := api.do("GET", "/merge-proposals/"+p.ID, "", ""); code != 200 || body["status"] != "proposed" {
				t.Fatalf("the proposal in the API: %d %v", code, body)
			}
		}
		cli.fails("an open merge proposal between these parent organizations exists", "merge", "propose", "--from", "Acme", "--into", "Globex")
		cli.fails("the same parent organization", "merge", "propose", "--from", "Acme", "--into", acme.ParentID)
		cli.fails("--by", "merge", "propose", "--from", "Globex", "--into", "Acme", "--by", "not-an-email")
		cli.fails("no parent organization with ID or name", "merge", "propose", "--from", "nope", "--into", "Acme")
		if !g.Logged(`"action":"merge.propose","actor":"owner@acme.com"`) {
			t.Fatalf("no audit event for the merge proposal")
		}
		out := cli.ok("merge", "propose", "--help")
		if !strings.Contains(out, "--from") || !strings.Contains(out, "--into") {
			t.Fatalf("merge propose --help:\n%s", out)
		}
	})

	t.Run("not running", func(t *testing.T) {
		for _, args := range [][]string{
			{"parent", "list"},
			{"org", "create", "--parent", "Acme", "--name", "X"},
			{"api-key", "create", "--parent", "Acme", "--name", "x"},
			{"api-key", "list", "--parent", "Acme"},
			{"api-key", "revoke", "--parent", "Acme", "--id", "x"},
			{"domain", "list"},
			{"session", "revoke", "--user", "bob@acme.com"},
			{"merge", "propose", "--from", "Globex", "--into", "Acme"},
		} {
			out, code := gatewaytest.RunCLI(t, "..", append(append([]string{"admin"}, args...), "--address", "127.0.0.1:1", "--json")...)
			if code == 0 || !strings.Contains(out, "cannot reach the ssogate server's admin endpoint at http://127.0.0.1:1 (is it running?") {
				t.Fatalf("%v without a server: exit %d\n%s", args, code, out)
			}
		}
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
