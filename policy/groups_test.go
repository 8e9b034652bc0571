package policy

import (
	"reflect"
	"testing"

	"github.com/ssogate/ssogate/store"
)

func TestParseGroup(t *testing.T) {
	tests := []struct {
		name, prefix, slug string
		role               store.Role
		ok                 bool
	}{
		{"ssogate-acme-admin", "ssogate-", "acme", store.RoleAdmin, true},
		{"ssogate-acme-member", "ssogate-", "acme", store.RoleMember, true},
		{"ssogate-acme-owner", "ssogate-", "acme", store.RoleOwner, true},
		{"ssogate-acme-research-member", "ssogate-", "acme-research", store.RoleMember, true}, // hyphenated slug
		{"ssogate-a-b-c-admin", "ssogate-", "a-b-c", store.RoleAdmin, true},
		{"SSOGATE-Acme-ADMIN", "ssogate-", "acme", store.RoleAdmin, true}, // case
		{"anthropic-acme-admin", "anthropic-", "acme", store.RoleAdmin, true},
		{"  ssogate-acme-admin  ", "ssogate-", "acme", store.RoleAdmin, true},
		{"ssogate-acme-primary_owner", "ssogate-", "", "", false}, // never granted by a group
		{"ssogate-acme-superuser", "ssogate-", "", "", false},     // unknown role
		{"ssogate-acme", "ssogate-", "", "", false},               // no role
		{"ssogate--admin", "ssogate-", "", "", false},             // empty slug
		{"ssogate-admin", "ssogate-", "", "", false},
		{"ssogate-", "ssogate-", "", "", false},
		{"acme-admin", "ssogate-", "", "", false},          // no prefix
		{"xssogate-acme-admin", "ssogate-", "", "", false}, // prefix not at start
		{"ssogate-ac me-admin", "ssogate-", "", "", false}, // bad slug
		{"ssogate-acme--admin", "ssogate-", "", "", false}, // slug ends with hyphen
		{"ssogate-acmé-admin", "ssogate-", "", "", false},  // non-ASCII slug
		{"ssogate-acme-admin", "", "", "", false},          // no prefix configured
		{"Engineering", "ssogate-", "", "", false},         // plain IdP group
		{"ssogate-acme-admin-", "ssogate-", "", "", false}, // trailing hyphen
		{"ssogate-acme.corp-admin", "ssogate-", "", "", false},
	}
	for _, tt := range tests {
		slug, role, ok := ParseGroup(tt.name, tt.prefix)
		if slug != tt.slug || role != tt.role || ok != tt.ok {
			t.Errorf("ParseGroup(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.name, tt.prefix, slug, role, ok, tt.slug, tt.role, tt.ok)
		}
	}
}

func TestMappedRoles(t *testing.T) {
	got := MappedRoles([]string{
		"ssogate-acme-member", "ssogate-acme-admin", "ssogate-acme-member", // highest wins, duplicates ignored
		"ssogate-research-member", "Everyone", "ssogate-other-bogus", "SSOGATE-Research-Member",
	}, "ssogate-")
	want := map[string]store.Role{"acme": store.RoleAdmin, "research": store.RoleMember}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MappedRoles = %v, want %v", got, want)
	}
	if len(MappedRoles(nil, "ssogate-")) != 0 {
		t.Fatal("no groups mapped something")
	}
}

func TestGroupNames(t *testing.T) {
	got := GroupNames("anthropic-", "acme-research")
	want := []string{"anthropic-acme-research-member", "anthropic-acme-research-admin", "anthropic-acme-research-owner"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GroupNames = %v", got)
	}
	for _, n := range got {
		if slug, _, ok := ParseGroup(n, "anthropic-"); !ok || slug != "acme-research" {
			t.Fatalf("%q does not parse back", n)
		}
	}
}

func TestDecideMapping(t *testing.T) {
	const (
		po = store.RolePrimaryOwner
		ow = store.RoleOwner
		ad = store.RoleAdmin
		me = store.RoleMember
	)
	tests := []struct {
		on              bool
		current, mapped store.Role
		want            MappingDecision
	}{
		{false, me, "", MappingDecision{MapKeep, me}}, // toggle off: nothing applies
		{false, "", ad, MappingDecision{MapKeep, ""}},
		{true, "", "", MappingDecision{MapKeep, ""}},
		{true, "", me, MappingDecision{MapGrant, me}},
		{true, "", ow, MappingDecision{MapGrant, ow}},
		{true, me, ad, MappingDecision{MapChange, ad}},
		{true, ow, me, MappingDecision{MapChange, me}}, // demotion follows the groups
		{true, ad, ad, MappingDecision{MapKeep, ad}},
		{true, me, "", MappingDecision{MapRemove, ""}}, // no mapped group: access ends
		{true, ow, "", MappingDecision{MapRemove, ""}},
		{true, po, "", MappingDecision{MapKeep, po}}, // primary owner never removed
		{true, po, me, MappingDecision{MapKeep, po}}, // nor demoted
	}
	for _, tt := range tests {
		if got := DecideMapping(tt.on, tt.current, tt.mapped); got != tt.want {
			t.Errorf("DecideMapping(%v, %q, %q) = %+v, want %+v", tt.on, tt.current, tt.mapped, got, tt.want)
		}
	}
}

func TestLockoutRisk(t *testing.T) {
	if !LockoutRisk([]store.Role{store.RoleMember, "", store.RoleAdmin}) {
		t.Fatal("no owner left is a lockout")
	}
	if LockoutRisk([]store.Role{"", store.RoleOwner}) || LockoutRisk([]store.Role{store.RolePrimaryOwner}) {
		t.Fatal("an owner keeps access")
	}
	if !LockoutRisk(nil) {
		t.Fatal("an empty org is a lockout")
	}
}
