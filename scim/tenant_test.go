package scim

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/store"
)

// Org A's token can neither see nor change org B's users and groups.
func TestCrossTenant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bUser := e.createUser(e.b.token, "bob@beta.io")
	res := e.do("POST", "/Groups", e.b.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "beta-admins",
		"externalId": "beta-ext", "members": []any{map[string]any{"value": bUser}}})
	if res.status != http.StatusCreated {
		t.Fatalf("create group: %d %s", res.status, res.raw)
	}
	bGroup := res.body["id"].(string)
	aUser := e.createUser(e.a.token, "alice@acme.com")
	e.revoked.take()
	e.groups.take()
	before := e.counts()
	bu, err := e.st.GetUser(ctx, bUser)
	must(t, err)

	patch := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false, "displayName": "pwned"}}}}
	for _, c := range []struct{ method, path string }{
		{"GET", "/Users/" + bUser},
		{"PUT", "/Users/" + bUser},
		{"PATCH", "/Users/" + bUser},
		{"DELETE", "/Users/" + bUser},
		{"GET", "/Groups/" + bGroup},
		{"PUT", "/Groups/" + bGroup},
		{"PATCH", "/Groups/" + bGroup},
		{"DELETE", "/Groups/" + bGroup},
	} {
		var body any
		switch {
		case c.method == "PATCH" && strings.HasPrefix(c.path, "/Users"):
			body = patch
		case c.method == "PATCH":
			body = map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"displayName": "pwned"}}}}
		case c.method == "PUT" && strings.HasPrefix(c.path, "/Users"):
			body = userBody("bob@beta.io", map[string]any{"active": false})
		case c.method == "PUT":
			body = map[string]any{"schemas": []string{uriGroup}, "displayName": "pwned"}
		}
		res := e.do(c.method, c.path, e.a.token, body)
		errorType(t, res, http.StatusNotFound)
	}
	// Lists and filters do not show B's resources.
	for _, q := range []string{
		"", `userName eq "bob@beta.io"`, `emails.value eq "bob@beta.io"`, `id eq "` + bUser + `"`,
		`userName sw "bob"`, `name.familyName eq "User"`,
	} {
		path := "/Users"
		if q != "" {
			path += "?filter=" + url.QueryEscape(q)
		}
		res := e.do("GET", path, e.a.token, nil)
		if res.status != 200 {
			t.Fatalf("%s: %d %s", q, res.status, res.raw)
		}
		for _, r := range asList(res.body["Resources"]) {
			if r.(map[string]any)["id"] == bUser {
				t.Errorf("filter %q listed org B's user", q)
			}
		}
	}
	for _, q := range []string{"", `displayName eq "beta-admins"`, `externalId eq "beta-ext"`, `displayName sw "beta"`} {
		path := "/Groups"
		if q != "" {
			path += "?filter=" + url.QueryEscape(q)
		}
		res := e.do("GET", path, e.a.token, nil)
		if n := len(asList(res.body["Resources"])); res.status != 200 || n != 0 {
			t.Errorf("groups filter %q: %d, %d resources: %s", q, res.status, n, res.raw)
		}
	}
	// A's group cannot take B's user as a member.
	res = e.do("POST", "/Groups", e.a.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "sneaky",
		"members": []any{map[string]any{"value": bUser}}})
	if typ := errorType(t, res, http.StatusBadRequest); typ != "invalidValue" {
		t.Errorf("scimType %q", typ)
	}
	// Same userName and externalId may exist in both orgs independently.
	res = e.do("POST", "/Users", e.a.token, userBody("carol@acme.com", map[string]any{"externalId": "beta-ext"}))
	if res.status != http.StatusCreated {
		t.Fatalf("%d %s", res.status, res.raw)
	}

	after := e.counts()
	before.users++
	before.membersA++
	if after != before {
		t.Errorf("counts %+v, want %+v", after, before)
	}
	if got := e.revoked.take(); len(got) != 0 {
		t.Errorf("revoked %v", got)
	}
	bu2, err := e.st.GetUser(ctx, bUser)
	must(t, err)
	m, err := e.st.GetMembership(ctx, e.b.org.ID, bUser)
	must(t, err)
	g, err := e.st.GetGroup(ctx, e.b.org.ID, bGroup)
	must(t, err)
	if bu2.Name != bu.Name || m.Status != store.MemberActive || g.DisplayName != "beta-admins" || len(g.Members) != 1 {
		t.Errorf("org B changed: user %+v membership %+v group %+v", bu2, m, g)
	}
	_ = aUser
}

// A SCIM token cannot provision users on another parent org's verified
// domain, even with unverified domains allowed, and cannot adopt or rename
// an account that belongs to another parent org.
func TestForeignAccounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.st.UpdateParentOrg(ctx, e.a.parent.ID, func(p *store.ParentOrg) error {
		p.AllowUnverifiedSCIMDomains = true
		return nil
	})
	must(t, err)
	before := e.counts()
	res := e.do("POST", "/Users", e.a.token, userBody("bob@beta.io", nil))
	if typ := errorType(t, res, http.StatusBadRequest); typ != "invalidValue" || !strings.Contains(res.body["detail"].(string), "another organization") {
		t.Errorf("%s", res.raw)
	}
	if e.counts() != before {
		t.Errorf("store changed")
	}
	// An account on an unverified domain that B already has: A may adopt it
	// (membership only) but neither rename nor re-profile it.
	dave := &store.User{Email: "dave@gmail.com", Name: "Dave"}
	must(t, e.st.CreateUser(ctx, dave))
	must(t, e.st.PutMembership(ctx, &store.Membership{OrgID: e.b.org.ID, UserID: dave.ID, Role: store.RoleMember}))
	res = e.do("POST", "/Users", e.a.token, userBody("dave@gmail.com", map[string]any{"displayName": "Mallory"}))
	if res.status != http.StatusCreated || res.body["id"] != dave.ID {
		t.Fatalf("adopt: %d %s", res.status, res.raw)
	}
	if u, _ := e.st.GetUser(ctx, dave.ID); u.Name != "Dave" {
		t.Errorf("foreign account re-profiled: %q", u.Name)
	}
	res = e.do("PATCH", "/Users/"+dave.ID, e.a.token, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": `emails[type eq "work"].value`, "value": "dave@acme.com"}}})
	if typ := errorType(t, res, http.StatusBadRequest); typ != "mutability" {
		t.Errorf("scimType %q: %s", typ, res.raw)
	}
	if u, _ := e.st.GetUser(ctx, dave.ID); u.Email != "dave@gmail.com" {
		t.Errorf("foreign account renamed to %q", u.Email)
	}
}
