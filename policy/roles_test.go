package policy

import (
	"testing"

	"github.com/ssogate/ssogate/store"
)

func TestMayManage(t *testing.T) {
	const (
		po = store.RolePrimaryOwner
		ow = store.RoleOwner
		ad = store.RoleAdmin
		me = store.RoleMember
	)
	tests := []struct {
		actor   store.Role
		action  Action
		target  store.Role
		newRole store.Role
		want    bool
	}{
		{po, ActInvite, ow, "", true},
		{po, ActInvite, ad, "", true},
		{po, ActInvite, po, "", false}, // primary owner is not granted by invite
		{ow, ActInvite, ow, "", true},
		{ow, ActInvite, me, "", true},
		{ad, ActInvite, me, "", true},
		{ad, ActInvite, ad, "", false},
		{ad, ActInvite, ow, "", false},
		{me, ActInvite, me, "", false},
		{po, ActRemove, po, "", false}, // never removed
		{ow, ActRemove, po, "", false},
		{ow, ActRemove, ow, "", true},
		{ow, ActRemove, ad, "", true},
		{ad, ActRemove, me, "", true},
		{ad, ActRemove, ad, "", false},
		{me, ActRemove, me, "", false},
		{ow, ActChangeRole, me, ad, true},
		{ow, ActChangeRole, ad, ow, true},
		{ow, ActChangeRole, me, po, false}, // nobody is promoted to primary owner
		{po, ActChangeRole, po, me, false}, // nor demoted from it
		{ad, ActChangeRole, me, ad, false},
		{ad, ActChangeRole, me, me, true},
		{ow, ActChangeRole, me, "superuser", false},
		{"", ActInvite, me, "", false},
		{"root", ActRemove, me, "", false},
		{ow, ActInvite, "guest", "", false},
	}
	for _, tt := range tests {
		if got := MayManage(tt.actor, tt.action, tt.target, tt.newRole); got != tt.want {
			t.Errorf("MayManage(%s, %s, %s, %q) = %v, want %v", tt.actor, tt.action, tt.target, tt.newRole, got, tt.want)
		}
	}
}

func TestCanAdminister(t *testing.T) {
	for r, want := range map[store.Role]bool{store.RolePrimaryOwner: true, store.RoleOwner: true, store.RoleAdmin: false, store.RoleMember: false, "": false} {
		if CanAdminister(r) != want {
			t.Errorf("CanAdminister(%q) = %v", r, !want)
		}
	}
}
