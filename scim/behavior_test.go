package scim

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ssogate/ssogate/store"
)

func patchBody(ops ...any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

// Deactivation (PUT or PATCH) and DELETE end the user's sessions in the
// same request; a failed revocation is a safe 500 and a retry revokes.
func TestRevokeOnDeactivateAndDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createUser(e.a.token, "rev@acme.com")
	e.revoked.take()

	res := e.do("PUT", "/Users/"+id, e.a.token, userBody("rev@acme.com", map[string]any{"active": false}))
	if res.status != 200 || !slices.Equal(e.revoked.take(), []string{id}) {
		t.Fatalf("PUT active=false: %d, revoked wrong", res.status)
	}
	res = e.do("PATCH", "/Users/"+id, e.a.token, patchBody(map[string]any{"op": "Replace", "path": "active", "value": "true"}))
	if res.status != 200 || len(e.revoked.take()) != 0 || !slices.Equal(e.refresh.take(), []string{id}) {
		t.Fatalf("reactivate: %d", res.status)
	}
	if m, _ := e.st.GetMembership(ctx, e.a.org.ID, id); m.Status != store.MemberActive {
		t.Fatalf("status %s", m.Status)
	}

	e.revoked.fail.Store(true)
	res = e.do("PATCH", "/Users/"+id, e.a.token, patchBody(map[string]any{"op": "replace", "value": map[string]any{"active": false}}))
	errorType(t, res, http.StatusInternalServerError)
	if !strings.Contains(res.body["detail"].(string), "ending the user's sessions failed") {
		t.Errorf("detail %q", res.body["detail"])
	}
	e.revoked.fail.Store(false)
	e.revoked.take()
	res = e.do("PATCH", "/Users/"+id, e.a.token, patchBody(map[string]any{"op": "replace", "value": map[string]any{"active": false}}))
	if res.status != 200 || !slices.Equal(e.revoked.take(), []string{id}) {
		t.Fatalf("retry did not revoke: %d", res.status)
	}

	res = e.do("DELETE", "/Users/"+id, e.a.token, nil)
	if res.status != http.StatusNoContent || !slices.Equal(e.revoked.take(), []string{id}) {
		t.Fatalf("DELETE: %d %s", res.status, res.raw)
	}
	if _, err := e.st.GetMembership(ctx, e.a.org.ID, id); err == nil {
		t.Fatal("membership survived DELETE")
	}
	if _, err := e.st.GetUser(ctx, id); err != nil {
		t.Errorf("the account itself should stay for its other orgs: %v", err)
	}
}

// An existing account (JIT or invited) is adopted, not duplicated; its
// role is kept.
func TestAdoptExistingUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	jit := &store.User{Email: "jit@acme.com", Name: "Jit User", CreatedBy: "jit"}
	must(t, e.st.CreateUser(ctx, jit))
	must(t, e.st.PutMembership(ctx, &store.Membership{OrgID: e.a.org.ID, UserID: jit.ID, Role: store.RoleAdmin, Source: "jit"}))
	loner := &store.User{Email: "loner@acme.com", CreatedBy: "invite"}
	must(t, e.st.CreateUser(ctx, loner))
	before := e.counts()

	// Before adoption the JIT member is found by its email as userName.
	res := e.do("GET", `/Users?filter=userName+eq+%22JIT@acme.com%22`, e.a.token, nil)
	if res.body["totalResults"] != 1.0 {
		t.Fatalf("JIT member not found by userName: %s", res.raw)
	}
	res = e.do("POST", "/Users", e.a.token, userBody("jit@acme.com", map[string]any{"externalId": "okta-1"}))
	if res.status != http.StatusCreated || res.body["id"] != jit.ID {
		t.Fatalf("adopt: %d %s", res.status, res.raw)
	}
	m, err := e.st.GetMembership(ctx, e.a.org.ID, jit.ID)
	must(t, err)
	if m.Role != store.RoleAdmin || m.SCIMUserName != "jit@acme.com" || m.SCIMExternalID != "okta-1" || m.Source != "jit" {
		t.Errorf("membership %+v", m)
	}
	res = e.do("POST", "/Users", e.a.token, userBody("loner@acme.com", nil))
	if res.status != http.StatusCreated || res.body["id"] != loner.ID {
		t.Fatalf("adopt non-member: %d %s", res.status, res.raw)
	}
	after := e.counts()
	if after.users != before.users || after.membersA != before.membersA+1 {
		t.Errorf("counts %+v, was %+v", after, before)
	}
	// A second POST of the same email is a conflict, not a third account.
	res = e.do("POST", "/Users", e.a.token, userBody("other-name", map[string]any{
		"emails": []any{map[string]any{"value": "jit@acme.com", "primary": true}}}))
	if typ := errorType(t, res, http.StatusConflict); typ != "uniqueness" {
		t.Errorf("scimType %q", typ)
	}
}

func TestUnverifiedDomainAllowed(t *testing.T) {
	e := newEnv(t)
	_, err := e.st.UpdateParentOrg(context.Background(), e.a.parent.ID, func(p *store.ParentOrg) error {
		p.AllowUnverifiedSCIMDomains = true
		return nil
	})
	must(t, err)
	if id := e.createUser(e.a.token, "contractor@freelance.example"); id == "" {
		t.Fatal("no id")
	}
}

// Entra ID's string booleans work on create too.
func TestStringBooleansOnCreate(t *testing.T) {
	e := newEnv(t)
	res := e.do("POST", "/Users", e.a.token, userBody("off@acme.com", map[string]any{"active": "False"}))
	if res.status != http.StatusCreated || res.body["active"] != false {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	m, err := e.st.GetMembership(context.Background(), e.a.org.ID, res.body["id"].(string))
	must(t, err)
	if m.Status != store.MemberInactive {
		t.Errorf("status %s", m.Status)
	}
	if r := e.revoked.take(); len(r) != 0 {
		t.Errorf("a new user has no sessions to end: %v", r)
	}
}

// Attributes given with their schema URN work like short names.
func TestQualifiedAttributes(t *testing.T) {
	e := newEnv(t)
	res := e.do("POST", "/Users", e.a.token, map[string]any{
		"schemas":                     []string{uriUser, uriEnterprise},
		uriUser + ":userName":         "fq@acme.com",
		uriUser + ":name.givenName":   "Fully",
		uriUser:                       map[string]any{"displayName": "Fully Qualified", "externalId": "fq-1"},
		uriEnterprise + ":department": "R&D",
		uriEnterprise + ":manager":    "boss-1",
		"urn:ietf:params:scim:schemas:core:2.0:user:title": "Dr",
	})
	if res.status != http.StatusCreated {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	id := res.body["id"].(string)
	want := map[string]any{"userName": "fq@acme.com", "displayName": "Fully Qualified", "title": "Dr",
		"name": map[string]any{"givenName": "Fully"}, uriEnterprise: map[string]any{"department": "R&D", "manager": map[string]any{"value": "boss-1"}}}
	if err := match("", want, res.body); err != nil {
		t.Error(err)
	}
	res = e.do("GET", "/Users?filter="+strings.ReplaceAll(uriUser+`:userName eq "FQ@acme.com"`, " ", "+"), e.a.token, nil)
	if res.body["totalResults"] != 1.0 {
		t.Errorf("qualified filter: %s", res.raw)
	}
	res = e.do("PATCH", "/Users/"+id, e.a.token, patchBody(
		map[string]any{"op": "replace", "path": uriUser + ":displayName", "value": "Renamed"},
		map[string]any{"op": "replace", "value": map[string]any{uriEnterprise: map[string]any{"division": "North"}}},
		map[string]any{"op": "remove", "path": uriEnterprise + ":department"},
	))
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	want = map[string]any{"displayName": "Renamed", uriEnterprise: map[string]any{"division": "North", "department": "$absent"}}
	if err := match("", want, res.body); err != nil {
		t.Error(err)
	}
	res = e.do("PATCH", "/Users/"+id, e.a.token, patchBody(map[string]any{"op": "remove", "path": "externalId"}))
	if res.status != 200 || res.body["externalId"] != nil {
		t.Errorf("remove externalId: %d %s", res.status, res.raw)
	}
	if m, _ := e.st.MembershipBySCIMExternalID(context.Background(), e.a.org.ID, "fq-1"); m != nil {
		t.Errorf("externalId still indexed")
	}
}

// OnGroupsChanged gets the users whose groups changed; when it fails the
// answer is a 500 and retrying the same PATCH runs it again.
func TestGroupHook(t *testing.T) {
	e := newEnv(t)
	u1, u2 := e.createUser(e.a.token, "one@acme.com"), e.createUser(e.a.token, "two@acme.com")
	res := e.do("POST", "/Groups", e.a.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "g"})
	g := res.body["id"].(string)
	e.groups.take()
	e.groups.fail.Store(true)
	add := patchBody(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": u1}, map[string]any{"value": u2}}})
	res = e.do("PATCH", "/Groups/"+g, e.a.token, add)
	errorType(t, res, http.StatusInternalServerError)
	e.groups.fail.Store(false)
	e.groups.take()
	e.refresh.take()
	res = e.do("PATCH", "/Groups/"+g, e.a.token, add)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	if got := sortedSet(e.groups.take()); !slices.Equal(got, sortedSet([]string{u1, u2})) {
		t.Errorf("retry ran the hook for %v", got)
	}
	if got := sortedSet(e.refresh.take()); !slices.Equal(got, sortedSet([]string{u1, u2})) {
		t.Errorf("refreshed %v", got)
	}
	// Replacing all members with PATCH replace.
	res = e.do("PATCH", "/Groups/"+g, e.a.token, patchBody(map[string]any{"op": "replace", "path": "members",
		"value": []any{map[string]any{"value": u2}}}))
	if res.status != 200 || !slices.Equal(e.groups.take(), []string{u1}) {
		t.Fatalf("replace members: %d %s", res.status, res.raw)
	}
	// Removing all members.
	res = e.do("PATCH", "/Groups/"+g, e.a.token, patchBody(map[string]any{"op": "remove", "path": "members"}))
	if err := match("", map[string]any{"members": []any{}}, res.body); err != nil || !slices.Equal(e.groups.take(), []string{u2}) {
		t.Fatalf("remove all: %v %s", err, res.raw)
	}
}

// Every change is audited as the token, with org, parent and target.
func TestAuditEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createUser(e.a.token, "aud@acme.com")
	e.do("PATCH", "/Users/"+id, e.a.token, patchBody(map[string]any{"op": "replace", "value": map[string]any{"active": false}}))
	e.do("POST", "/Groups", e.a.token, map[string]any{"schemas": []string{uriGroup}, "displayName": "auditors"})
	e.do("DELETE", "/Users/"+id, e.a.token, nil)
	evs, _, err := e.st.ListAudit(ctx, store.AuditQuery{ParentID: e.a.parent.ID})
	must(t, err)
	var got []string
	for _, ev := range evs {
		if ev.Actor != "scim:okta" || ev.OrgID != e.a.org.ID || ev.ParentID != e.a.parent.ID || ev.Outcome != "success" {
			t.Errorf("event %+v", ev)
		}
		got = append(got, ev.Action+" "+ev.Target)
	}
	want := []string{"scim.user.create aud@acme.com", "scim.user.deactivate aud@acme.com", "scim.group.create auditors", "scim.user.delete aud@acme.com"}
	if !slices.Equal(got, want) {
		t.Errorf("audit %q, want %q", got, want)
	}
}

// In an org whose access comes from group mappings, SCIM members start
// unmapped; active:true never grants access by itself, it asks mappings.
func TestGroupMappingsOrg(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.st.UpdateOrg(ctx, e.a.org.ID, func(o *store.Org) error { o.GroupMappings = true; return nil })
	must(t, err)
	status := func(id string) store.MembershipStatus {
		m, err := e.st.GetMembership(ctx, e.a.org.ID, id)
		must(t, err)
		return m.Status
	}
	id := e.createUser(e.a.token, "mapped@acme.com")
	if s := status(id); s != store.MemberUnmapped {
		t.Fatalf("new member %s, want unmapped", s)
	}
	e.groups.take()
	res := e.do("PUT", "/Users/"+id, e.a.token, userBody("mapped@acme.com", map[string]any{"active": true}))
	if res.status != 200 || res.body["active"] != true || status(id) != store.MemberUnmapped {
		t.Fatalf("PUT active=true: %d %s, status %s", res.status, res.raw, status(id))
	}
	if got := e.groups.take(); !slices.Equal(got, []string{id}) {
		t.Errorf("mappings asked for %v", got)
	}
	e.do("PATCH", "/Users/"+id, e.a.token, patchBody(map[string]any{"op": "replace", "value": map[string]any{"active": false}}))
	if status(id) != store.MemberInactive || !slices.Equal(e.revoked.take(), []string{id}) {
		t.Fatalf("deactivate: %s", status(id))
	}
	e.groups.take()
	e.do("PATCH", "/Users/"+id, e.a.token, patchBody(map[string]any{"op": "replace", "value": map[string]any{"active": true}}))
	if status(id) != store.MemberUnmapped || !slices.Equal(e.groups.take(), []string{id}) {
		t.Fatalf("reactivate: %s", status(id))
	}
	// An existing member with access keeps it when SCIM adopts it.
	jit := &store.User{Email: "granted@acme.com"}
	must(t, e.st.CreateUser(ctx, jit))
	must(t, e.st.PutMembership(ctx, &store.Membership{OrgID: e.a.org.ID, UserID: jit.ID, Role: store.RoleAdmin, Source: "group"}))
	e.createUser(e.a.token, "granted@acme.com")
	if s := status(jit.ID); s != store.MemberActive {
		t.Errorf("adopted member %s, want active", s)
	}
}
