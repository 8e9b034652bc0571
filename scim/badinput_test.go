package scim

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/store"
)

// Every bad request gets an RFC 7644 error and changes nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	existing := e.createUser(e.a.token, "taken@acme.com")
	res := e.do("POST", "/Groups", e.a.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "eng",
		"members": []any{map[string]any{"value": existing}}})
	if res.status != http.StatusCreated {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	group := res.body["id"].(string)
	patchOp := func(ops ...any) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
	}
	huge := `{"schemas":["` + uriUser + `"],"userName":"big@acme.com","displayName":"` + strings.Repeat("x", 2<<20) + `"}`

	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		scimType, detail          string
	}{
		{"malformed JSON", "POST", "/Users", e.a.token, `{"schemas": [`, 400, "invalidSyntax", ""},
		{"malformed JSON PUT", "PUT", "/Users/" + existing, e.a.token, `{"userName": }`, 400, "invalidSyntax", ""},
		{"malformed JSON PATCH", "PATCH", "/Users/" + existing, e.a.token, `[1,2`, 400, "invalidSyntax", ""},
		{"no schemas", "POST", "/Users", e.a.token, map[string]any{"userName": "x@acme.com"}, 400, "invalidSyntax", ""},
		{"bad filter", "GET", "/Users?filter=" + url.QueryEscape(`userName eq`), e.a.token, nil, 400, "invalidFilter", ""},
		{"unknown filter attribute", "GET", "/Users?filter=" + url.QueryEscape(`shoeSize eq "9"`), e.a.token, nil, 400, "invalidFilter", ""},
		{"bad group filter", "GET", "/Groups?filter=" + url.QueryEscape(`displayName xx "a"`), e.a.token, nil, 400, "invalidFilter", ""},
		{"duplicate userName", "POST", "/Users", e.a.token, userBody("taken@acme.com", nil), 409, "uniqueness", ""},
		{"duplicate userName other case", "POST", "/Users", e.a.token, userBody("TAKEN@acme.com", nil), 409, "uniqueness", ""},
		{"duplicate group name", "POST", "/Groups", e.a.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "ENG"}, 409, "uniqueness", ""},
		{"2 MiB body", "POST", "/Users", e.a.token, huge, 413, "", "larger than"},
		{"2 MiB PATCH", "PATCH", "/Users/" + existing, e.a.token, huge, 413, "", "larger than"},
		{"no token", "GET", "/Users", "", nil, 401, "", ""},
		{"wrong token", "GET", "/Users", store.NewSecret("scim_"), nil, 401, "", ""},
		{"wrong token on write", "POST", "/Users", "nope", userBody("w@acme.com", nil), 401, "", ""},
		{"unverified domain", "POST", "/Users", e.a.token, userBody("eve@unverified.example", nil), 400, "invalidValue", "not a domain your organization has verified"},
		{"two @", "POST", "/Users", e.a.token, userBody("a@b@acme.com", nil), 400, "invalidValue", "exactly one @"},
		{"two @ in emails", "POST", "/Users", e.a.token, userBody("plainname", map[string]any{
			"emails": []any{map[string]any{"value": "x@y@acme.com", "primary": true}}}), 400, "invalidValue", "exactly one @"},
		{"zero-width space", "POST", "/Users", e.a.token, userBody("zw\u200b@acme.com", nil), 400, "invalidValue", ""},
		{"no email at all", "POST", "/Users", e.a.token, map[string]any{"schemas": []string{uriUser}, "userName": "justaname"}, 400, "invalidValue", "no email"},
		{"no userName", "POST", "/Users", e.a.token, map[string]any{"schemas": []string{uriUser}, "displayName": "x"}, 400, "invalidValue", ""},
		{"bad active", "POST", "/Users", e.a.token, userBody("act@acme.com", map[string]any{"active": "maybe"}), 400, "invalidValue", ""},
		{"rename to unverified domain", "PATCH", "/Users/" + existing, e.a.token, patchOp(map[string]any{"op": "replace",
			"path": `emails[type eq "work"].value`, "value": "taken@elsewhere.example"}), 400, "invalidValue", "verified"},
		{"remove without path", "PATCH", "/Users/" + existing, e.a.token, patchOp(map[string]any{"op": "remove"}), 400, "noTarget", ""},
		{"unknown op", "PATCH", "/Users/" + existing, e.a.token, patchOp(map[string]any{"op": "merge", "path": "title", "value": "x"}), 400, "", ""},
		{"patch without PatchOp schema", "PATCH", "/Users/" + existing, e.a.token, map[string]any{"Operations": []any{}}, 400, "invalidValue", ""},
		{"unknown member", "POST", "/Groups", e.a.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "x",
			"members": []any{map[string]any{"value": "nosuchuser"}}}, 400, "invalidValue", "not a user of this organization"},
		{"patch adds unknown member", "PATCH", "/Groups/" + group, e.a.token, patchOp(map[string]any{"op": "add", "path": "members",
			"value": []any{map[string]any{"value": "ghost"}}}), 400, "invalidValue", "not a user"},
		{"group without name", "PUT", "/Groups/" + group, e.a.token, map[string]any{"schemas": []string{uriGroup}}, 400, "invalidValue", ""},
		{"unknown user", "GET", "/Users/nosuchuser", e.a.token, nil, 404, "", ""},
		{"path escape id", "GET", "/Users/..%2F" + existing, e.a.token, nil, 404, "", ""},
		{"unknown endpoint", "GET", "/Widgets", e.a.token, nil, 404, "", ""},
	}
	before := e.counts()
	audits := e.audits.Load()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.revoked.take()
			res := e.do(c.method, c.path, c.token, c.body)
			typ := errorType(t, res, c.status)
			if c.scimType != "" && typ != c.scimType {
				t.Errorf("scimType %q, want %q: %s", typ, c.scimType, res.raw)
			}
			if d, _ := res.body["detail"].(string); !strings.Contains(d, c.detail) {
				t.Errorf("detail %q does not say %q", d, c.detail)
			}
			if c.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
			}
			if got := e.counts(); got != before {
				t.Errorf("store changed: %+v, was %+v", got, before)
			}
			if r := e.revoked.take(); len(r) != 0 {
				t.Errorf("revoked %v", r)
			}
		})
	}
	u, err := e.st.GetUser(context.Background(), existing)
	must(t, err)
	if u.Email != "taken@acme.com" {
		t.Errorf("user changed: %+v", u)
	}
	g, err := e.st.GetGroup(context.Background(), e.a.org.ID, group)
	must(t, err)
	if g.DisplayName != "eng" || len(g.Members) != 1 {
		t.Errorf("group changed: %+v", g)
	}
	// Only the refusals of unverified domains are audited (as failures).
	if n := e.audits.Load() - audits; n != 2 {
		t.Errorf("%d audit events for refused requests, want 2", n)
	}
}

// A failed membership write undoes the user it created, and the answer
// does not leak the store's error text.
func TestNoHalfWrites(t *testing.T) {
	e := newEnv(t)
	before := e.counts()
	e.probe.failPuts.Store("member/")
	res := e.do("POST", "/Users", e.a.token, userBody("half@acme.com", nil))
	errorType(t, res, http.StatusInternalServerError)
	if d := res.body["detail"].(string); strings.Contains(d, "store") || strings.Contains(d, errInjected.Error()) {
		t.Errorf("detail leaks the cause: %q", d)
	}
	if e.probe.failCount.Load() == 0 {
		t.Fatal("the injected failure did not fire")
	}
	if got := e.counts(); got != before {
		t.Errorf("store changed: %+v, was %+v", got, before)
	}
	// An adopted account's profile is restored too.
	ctx := context.Background()
	jit := &store.User{Email: "jit@acme.com", Name: "Jit", CreatedBy: "jit"}
	must(t, e.st.CreateUser(ctx, jit))
	res = e.do("POST", "/Users", e.a.token, userBody("jit@acme.com", map[string]any{"displayName": "Changed"}))
	errorType(t, res, http.StatusInternalServerError)
	if u, _ := e.st.GetUser(ctx, jit.ID); u.Name != "Jit" {
		t.Errorf("adopted profile not restored: %q", u.Name)
	}
	e.probe.failPuts.Store("")
	if id := e.createUser(e.a.token, "half@acme.com"); id == "" {
		t.Fatal("retry failed")
	}
}
